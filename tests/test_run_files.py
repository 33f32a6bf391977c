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
