"""A training history's curves and the diagnosis rules over them."""
