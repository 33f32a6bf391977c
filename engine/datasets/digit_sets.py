"""Example datasets derived from scikit-learn's digits: nothing is downloaded.

``digits_attributes`` (multilabel): every 8x8 digit with four yes/no labels
read off its class (even, at least 5, prime, has a closed loop), so a label
is shared by several classes and an image carries zero to three of them.
``digits_detection`` (detection, several objects): 32x32 canvases with one to
``MAX_OBJECTS`` digits pasted at random sizes and places without overlap;
targets ``[N, MAX_OBJECTS, 6]`` rows are ``x1, y1, x2, y2, class, valid`` with
the box in [0, 1] image coordinates and ``valid`` 0 on padding rows.
"""

from __future__ import annotations

import numpy as np

ATTRIBUTES = {
    "even": (0, 2, 4, 6, 8),
    "at_least_5": (5, 6, 7, 8, 9),
    "prime": (2, 3, 5, 7),
    "has_loop": (0, 6, 8, 9),
}
CANVAS = 32
MAX_OBJECTS = 3
SIZES = (8, 14)  # side of a pasted digit in pixels, inclusive range
DETECTION_SAMPLES = 1500


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    loaded = load_digits()
    return loaded.images.astype(np.float32), loaded.target.astype(np.int64)


def digit_attributes(digits: np.ndarray) -> np.ndarray:
    """``[N, 4]`` 0/1 labels (``ATTRIBUTES`` order) of digit classes ``[N]``."""
    return np.stack([np.isin(digits, members) for members in ATTRIBUTES.values()], axis=1).astype(
        np.int32
    )


def make_digit_set(
    name: str, n_samples: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(x, y, label or class names) of a derived set; the canvases are drawn from ``seed``."""
    images, labels = _digits()
    if name == "digits_attributes":
        return images[..., None], digit_attributes(labels), list(ATTRIBUTES)
    if name == "digits_detection":
        x, y = paste_digits(images, labels, n_samples or DETECTION_SAMPLES, seed)
        return x, y, [str(d) for d in range(10)]
    raise KeyError(name)


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    """Bilinear resize of one square image to ``side`` x ``side``."""
    from scipy.ndimage import zoom

    return np.clip(zoom(image, side / image.shape[0], order=1), 0.0, None)[:side, :side]


def paste_digits(
    images: np.ndarray, labels: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` canvases with 1..MAX_OBJECTS non-overlapping digits; boxes hug the ink."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, CANVAS, CANVAS, 1), np.float32)
    y = np.zeros((n, MAX_OBJECTS, 6), np.float32)
    for i in range(n):
        taken: list[tuple[int, int, int, int]] = []
        for _ in range(int(rng.integers(1, MAX_OBJECTS + 1))):
            for _attempt in range(20):
                side = int(rng.integers(SIZES[0], SIZES[1] + 1))
                top, left = (int(v) for v in rng.integers(0, CANVAS - side + 1, 2))
                box = (left, top, left + side, top + side)
                if all(_disjoint(box, other) for other in taken):
                    break
            else:
                continue
            pick = int(rng.integers(len(images)))
            patch = _resize(images[pick], side)
            x[i, top : top + side, left : left + side, 0] = patch
            rows, cols = np.nonzero(patch > 1.0)  # the ink, out of 16
            j = len(taken)
            y[i, j] = [
                (left + cols.min()) / CANVAS,
                (top + rows.min()) / CANVAS,
                (left + cols.max() + 1) / CANVAS,
                (top + rows.max() + 1) / CANVAS,
                labels[pick],
                1.0,
            ]
            taken.append(box)
    return x, y


def _disjoint(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
