"""Per-label precision and recall of the diagnosis over the labelled collection.

    python benchmarks/diagnosis_labels.py        # markdown tables: hand-made, engine runs, all

The collection is tests/data/histories: hand-made curves in every supported format
(labels.json, written by make_histories.py) and scripted runs of this project's
engine (engine_labels.json, written by make_engine_histories.py).  Each history is
diagnosed with its task and class count known (as they are from a plan); a label is
a problem name, and a history may carry several.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def evaluate(parts: tuple[str, ...]) -> tuple[dict, list[str], int, float]:
    """(per-label table, misses, histories, seconds) over the given label files."""
    from diagnosis_support import HISTORIES, labelled, score

    from advisor.contract.vocabulary import PROBLEMS
    from advisor.diagnostics.diagnosis import diagnose
    from advisor.readers import load_history

    pairs, misses = [], []
    started = time.perf_counter()
    items = labelled(parts)
    for rel, info in sorted(items.items()):
        history = load_history(HISTORIES / rel).model_copy(
            update={"task": info["task"], "n_classes": info["n_classes"]}
        )
        got = {p.name for p in diagnose(history).problems}
        pairs.append((set(info["labels"]), got))
        if got != set(info["labels"]):
            misses.append(f"{rel}: expected {sorted(info['labels'])}, got {sorted(got)}")
    return score(pairs, PROBLEMS), misses, len(items), time.perf_counter() - started


def main() -> None:
    for title, parts in (
        ("hand-made", ("labels",)),
        ("engine runs", ("engine_labels",)),
        ("all", ("labels", "engine_labels")),
    ):
        table, misses, n, seconds = evaluate(parts)
        print(f"\n{title}: {n} histories, diagnosed in {seconds:.1f} s\n")
        print("| label | histories | precision | recall |")
        print("|---|---:|---:|---:|")
        for name, row in table.items():
            if row["support"] or row["precision"] < 1:
                print(
                    f"| {name} | {row['support']} | {row['precision']:.2f} | {row['recall']:.2f} |"
                )
        for miss in misses:
            print(f"- miss: {miss}")


if __name__ == "__main__":
    main()
