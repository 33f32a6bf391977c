"""Many plans trained and compared: search, populations, lr_find, workers."""
