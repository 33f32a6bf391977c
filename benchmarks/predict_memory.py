"""``advisor predict`` holds one batch in memory, whatever the input's length.

    python benchmarks/predict_memory.py RUN_DIR            # 20k and 400k digits rows
    python benchmarks/predict_memory.py RUN_DIR 1000 50000

RUN_DIR is a run of a digits plan (inputs of 64 values), e.g. from
``advisor run examples/plans/digits_mlp.json --out runs/digits``.  For each
row count the script writes a .npy of digits rows (repeated), predicts it in a
fresh process into a CSV, and reports that process's peak anonymous memory
(``RssAnon`` in /proc, sampled every 10 ms).  The input and a .npy output are
memory-mapped files: their pages are file-backed, so they are not in this
number, which is what the process itself allocates.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_CHILD = """
import sys, threading, time
from pathlib import Path
from advisor.workflows.using import predict_files

peak = [0]

def watch():
    while True:
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon"):
                peak[0] = max(peak[0], int(line.split()[1]))
        time.sleep(0.01)

threading.Thread(target=watch, daemon=True).start()
predict_files(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), progress=False)
time.sleep(0.05)
print(peak[0] // 1024)
"""


def main() -> None:
    from sklearn.datasets import load_digits

    run_dir = sys.argv[1]
    counts = [int(n) for n in sys.argv[2:]] or [20_000, 400_000]
    digits = load_digits().data.astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        for n in counts:
            rows = Path(folder) / f"x{n}.npy"
            np.save(rows, digits[np.arange(n) % len(digits)])
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, run_dir, str(rows), str(Path(folder) / "p.csv")],
                capture_output=True,
                text=True,
                check=True,
            )
            peak = done.stdout.strip().splitlines()[-1]
            print(f"{n:>9} rows: peak anonymous memory {peak} MB")


if __name__ == "__main__":
    main()
