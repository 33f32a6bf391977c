"""Write a folder of RGB shape images (PNG, one sub-folder per class) for the streaming check.

python benchmarks/make_image_folder.py OUT N SIDE     # e.g. big 18434 96
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from engine.datasets.sources import make_shapes


def main() -> None:
    root, n, side = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    done = 0
    while done < n:
        k = min(2000, n - done)
        x, y = make_shapes(k, (side, side), seed=done)
        for i in range(k):
            folder = root / f"c{y[i]}"
            folder.mkdir(parents=True, exist_ok=True)
            grey = np.clip(x[i, ..., 0] * 255, 0, 255).astype(np.uint8)
            rgb = np.stack([grey, grey[::-1], grey[:, ::-1]], -1)
            Image.fromarray(rgb).save(folder / f"{done + i:06d}.png")
        done += k


if __name__ == "__main__":
    main()
