"""The datasets derived from scikit-learn's digits: labels follow the digit, boxes hug the ink."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from engine.digit_sets import ATTRIBUTES, CANVAS, MAX_OBJECTS, make_digit_set


def test_attributes_are_read_off_the_digit_class():
    x, y, names = make_digit_set("digits_attributes", None, seed=0)
    digits = load_digits()
    assert names == list(ATTRIBUTES) and x.shape == (1797, 8, 8, 1) and y.shape == (1797, 4)
    for i in (0, 2, 7, 9, 100):
        d = int(digits.target[i])
        assert y[i].tolist() == [int(d in ATTRIBUTES[n]) for n in names]
    np.testing.assert_array_equal(x[..., 0], digits.images)
    # every label has both values, and images carry zero to three labels at once
    assert set(y.sum(axis=1).tolist()) == {0, 1, 2, 3} and (0 < y.mean(axis=0)).all()
