"""Time reading a 200,000 x 30 CSV through ``engine.datasets.sources.read_csv`` (issue 17).

    nice python benchmarks/table_bench.py [--rows 200000] [--repeat 3]

Writes the table once to a temporary folder (29 float features, 1 text
feature, an integer target), then reads it ``--repeat`` times and prints the
fastest in seconds, with the reader in use.  Run it from another checkout
(``PYTHONPATH=OLD_TREE``) to time an older reader on the same file.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def write_table(path: Path, rows: int, text_column: bool) -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(rows, 29)).astype(np.float32)
    header = [f"f{i}" for i in range(29)] + (["colour"] if text_column else ["f29"]) + ["y"]
    colours = np.array(["red", "green", "blue", "amber"])[rng.integers(0, 4, rows)]
    extra = colours if text_column else np.round(rng.normal(size=rows), 6).astype(str)
    labels = rng.integers(0, 3, rows)
    with path.open("w") as out:
        out.write(",".join(header) + "\n")
        for row, e, y in zip(values, extra, labels, strict=True):
            out.write(",".join(f"{v:.6g}" for v in row) + f",{e},{y}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--numeric-only", action="store_true", help="no text column")
    args = parser.parse_args()
    from advisor.contract.schemas import CsvData
    from engine.datasets.sources import read_csv

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.csv"
        write_table(path, args.rows, text_column=not args.numeric_only)
        source = CsvData(path=str(path), target="y")
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            raw = read_csv(source, path, "multiclass")
            times.append(time.perf_counter() - started)
        try:
            from engine.datasets.tables import csv_engine

            reader = f"pandas ({csv_engine()} engine)"
        except ImportError:
            reader = "csv module"
        size = path.stat().st_size / 2**20
        print(
            f"{args.rows} x 30 CSV ({size:.0f} MiB), {reader}: best of {args.repeat} "
            f"{min(times):.2f} s (all: {', '.join(f'{t:.2f}' for t in times)}); "
            f"x {raw.x.shape}"
        )


if __name__ == "__main__":
    main()
