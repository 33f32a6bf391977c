"""Run files: written with the mode a plain open() gives, not mkstemp's private 0600."""

import os

import numpy as np

from engine.checkpoint import save_checkpoint


def test_weights_and_structure_are_created_readable(tmp_path):
    umask = os.umask(0o022)
    try:
        weights = save_checkpoint(tmp_path, {"params": {"w": np.ones((2, 3), np.float32)}}, {})
    finally:
        os.umask(umask)
    assert weights.stat().st_mode & 0o777 == 0o644
    for path in tmp_path.iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path.name


def test_curve_png_is_created_readable(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.curves import save_figure

    umask = os.umask(0o022)
    try:
        fig = plt.figure()
        path = save_figure(fig, tmp_path / "curves.png")
        plt.close(fig)
    finally:
        os.umask(umask)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_mode & 0o777 == 0o644
