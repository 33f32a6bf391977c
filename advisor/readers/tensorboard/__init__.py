"""TensorBoard's scalars, read without TensorFlow: event files (``event_files``, decoded by
``tfevents``) and scalars exported to CSV in long form (``scalars_csv``)."""
