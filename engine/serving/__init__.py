"""A trained run used on new data: predict, evaluate, export."""
