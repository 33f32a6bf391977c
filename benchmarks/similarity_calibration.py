"""Where known-similar and known-different pairs land on the measured similarity (docs/transfer.md).

    python benchmarks/similarity_calibration.py

Two bases (``advisor pretrain`` builds them): a CNN on digits 0-4 and one on
generated circles and squares.  Each is measured, as ``advisor profile --base``
measures, against targets whose relation to it is known by construction:
the same task, disjoint classes of the same dataset (similar), the other
dataset, inverted digits and uniform noise (different).  The rules' boundary
is 0.5; the table shows each pair's score, its two factors and which side it
lands on.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DIGITS = "builtin:digits"
SHAPES = "builtin:shapes"
SHAPES_8 = {"n_samples": 1200, "image_size": (8, 8)}
# base -> [(target, data, options, known relation)]
PAIRS = {
    "digits_0to4": [
        ("digits 0-4 (its own task)", DIGITS, {"classes": [0, 1, 2, 3, 4]}, "similar"),
        ("digits 5-9", DIGITS, {"classes": [5, 6, 7, 8, 9]}, "similar"),
        ("100 digits 5-9", DIGITS, {"classes": [5, 6, 7, 8, 9], "subsample": 100}, "similar"),
        ("shapes (4 classes)", SHAPES, SHAPES_8, "different"),
        ("100 shapes", SHAPES, {**SHAPES_8, "subsample": 100}, "different"),
        ("inverted digits 5-9", "inverted", {}, "different"),
        ("uniform noise, random labels", "noise", {}, "different"),
    ],
    "shapes_0to1": [
        ("circles and squares (its own task)", SHAPES, {**SHAPES_8, "classes": [0, 1]}, "similar"),
        ("triangles and crosses", SHAPES, {**SHAPES_8, "classes": [2, 3]}, "similar"),
        ("shapes (4 classes)", SHAPES, SHAPES_8, "similar"),
        ("100 shapes", SHAPES, {**SHAPES_8, "subsample": 100}, "similar"),
        ("digits 5-9", DIGITS, {"classes": [5, 6, 7, 8, 9]}, "different"),
        ("100 digits 5-9", DIGITS, {"classes": [5, 6, 7, 8, 9], "subsample": 100}, "different"),
        ("uniform noise, random labels", "noise", {}, "different"),
    ],
}


def _special(kind: str, folder: Path) -> str:
    """An .npz of inverted digits 5-9 or of uniform noise, for pairs no bundled dataset gives."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    if kind == "inverted":
        keep = digits.target >= 5
        x, y = 16.0 - digits.data[keep].reshape(-1, 8, 8, 1), digits.target[keep] - 5
    else:
        x, y = rng.uniform(0, 16, (600, 8, 8, 1)), rng.integers(0, 4, 600)
    path = folder / f"{kind}.npz"
    np.savez(path, x=x.astype(np.float32), y=y)
    return str(path)


def measure(report=print) -> list[dict]:
    """Every pair's measured similarity and evidence."""
    from advisor.workflows.profiling import parse_source, profile_data

    folder = Path(tempfile.mkdtemp(prefix="similarity-"))
    rows = []
    for base, pairs in PAIRS.items():
        for target, data, options, known in pairs:
            data = _special(data, folder) if data in ("inverted", "noise") else data
            profile = profile_data(parse_source(data, **options), base=f"runs/bases/{base}")
            m = profile.pretrained.measured
            row = {
                "base": base,
                "target": target,
                "known": known,
                "n_train": profile.n_train,
                "score": profile.pretrained.similarity,
                "shift": m.shift,
                "closeness": m.closeness,
                "probe": m.probe_accuracy,
                "chance": m.chance,
                "relevance": m.relevance,
            }
            row["lands"] = "similar" if row["score"] >= 0.5 else "different"
            rows.append(row)
            report(f"{base:12s} {target:36s} {row['score']:.3f} ({row['lands']}, known {known})")
    return rows


def main() -> int:
    import os

    from advisor.workflows.bases import pretrain

    os.chdir(ROOT)
    pretrain([ROOT / "examples/bases"])
    rows = measure()
    print(
        "\n| base | target | n_train | known | shift | closeness | probe acc. (chance) | relevance | similarity | lands |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mark = "" if r["lands"] == r["known"] else " ✗"
        print(
            f"| {r['base']} | {r['target']} | {r['n_train']} | {r['known']} | {r['shift']:.3f} | {r['closeness']:.3f} | "
            f"{r['probe']:.3f} ({r['chance']:.2f}) | {r['relevance']:.2f} | {r['score']:.3f} | {r['lands']}{mark} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
