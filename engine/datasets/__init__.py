"""Where examples come from: sources, tables, the split, augmentation, checks."""
