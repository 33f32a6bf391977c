"""Pretrained bases: find, import, compare, and train a head on their features."""
