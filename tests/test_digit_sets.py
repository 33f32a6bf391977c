"""The datasets derived from scikit-learn's digits: labels follow the digit, boxes hug the ink."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from engine.datasets.digit_sets import ATTRIBUTES, CANVAS, MAX_OBJECTS, make_digit_set


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


def test_detection_canvases_hold_one_to_three_digits_with_boxes_on_the_ink():
    x, y, names = make_digit_set("digits_detection", 60, seed=3)
    assert x.shape == (60, CANVAS, CANVAS, 1) and y.shape == (60, MAX_OBJECTS, 6)
    assert names == [str(d) for d in range(10)]
    valid = y[..., 5] == 1
    assert set(valid.sum(axis=1).tolist()) <= {1, 2, 3} and valid[:, 0].all()
    assert (y[~valid] == 0).all()  # padding rows are zeros
    for i in range(60):
        ink = x[i, ..., 0] > 1.0
        covered = np.zeros_like(ink)
        for x1, y1, x2, y2, label, _ in y[i, valid[i]]:
            assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1 and label == int(label)
            rows = slice(round(y1 * CANVAS), round(y2 * CANVAS))
            cols = slice(round(x1 * CANVAS), round(x2 * CANVAS))
            assert covered[rows, cols].sum() == 0  # boxes do not overlap
            covered[rows, cols] = True
            box = ink[rows, cols]
            assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()
        assert not (ink & ~covered).any()  # no ink outside the boxes
    again, _, _ = make_digit_set("digits_detection", 60, seed=3)
    np.testing.assert_array_equal(again, x)  # drawn from the seed
