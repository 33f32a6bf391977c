"""The contract: file formats, errors, checked input, names (the engine may import these)."""
