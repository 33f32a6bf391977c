"""The closed loop, measured: deliberately bad plans are run, diagnosed, revised and
run again; the table says whether the revised plan's validation metric is better.

    python benchmarks/diagnosis_closed_loop.py            # the table (~2 min on 2 CPU cores)
    python benchmarks/diagnosis_closed_loop.py --json     # the rows as JSON

Each row: the bad plan (an examples/plans/ plan with a few fields changed), what the
diagnosis of its run found, the fields next_plan.json changed, and the validation
loss and accuracy of the first and the second run (the restored best epoch when the
plan stops early, else the last).  A run that diverges has no validation loss (inf).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

_BARE = {"regularization.early_stopping": None, "schedule.name": "constant", "search": None}

# name -> (example plan, changes): each plan is bad in one way the lecture names
BAD_PLANS: dict[str, tuple[str, dict]] = {
    "lr far too high (adam 0.05)": (
        "digits_mlp",
        {**_BARE, "optimizer.learning_rate": 0.05, "epochs": 40},
    ),
    "lr far too high, recommended plan (adam 0.05, cosine, early stopping)": (
        "digits_mlp",
        {"search": None, "optimizer.learning_rate": 0.05},
    ),
    "lr far too high (sgd 5.0, diverges)": (
        "digits_mlp",
        {**_BARE, "optimizer.name": "sgd", "optimizer.learning_rate": 5.0, "epochs": 30},
    ),
    "lr far too low (sgd 5e-4)": (
        "digits_mlp",
        {**_BARE, "optimizer.name": "sgd", "optimizer.learning_rate": 0.0005, "epochs": 40},
    ),
    "big model, 150 samples": (
        "digits_mlp",
        {
            **_BARE,
            "data.source.subsample": 150,
            "n_train": 150,
            "model.units": 512,
            "model.hidden_layers": 3,
            "model.dropout": 0.0,
            "epochs": 150,
        },
    ),
    "big model, 60 samples (binary)": (
        "breast_cancer_binary",
        {
            **_BARE,
            "data.source.subsample": 60,
            "n_train": 60,
            "model.units": 512,
            "model.hidden_layers": 3,
            "model.dropout": 0.0,
            "epochs": 150,
        },
    ),
    "tiny model (2 units), hard task": (
        "digits_mlp",
        {
            **_BARE,
            "model.units": 2,
            "model.hidden_layers": 1,
            "model.dropout": 0.0,
            "optimizer.learning_rate": 0.01,
            "epochs": 60,
        },
    ),
    "deep sigmoid net, plain sgd": (
        "digits_mlp",
        {
            **_BARE,
            "optimizer.name": "sgd",
            "optimizer.learning_rate": 0.5,
            "model.activation": "sigmoid",
            "model.hidden_layers": 5,
            "model.units": 32,
            "model.dropout": 0.0,
            "epochs": 60,
        },
    ),
}


def run_and_diagnose(plan, out_dir: Path) -> dict:
    """Run a plan; return its validation metrics, the diagnosis and the next plan's path."""
    from advisor.contract.errors import EngineError
    from advisor.contract.io import load_model
    from advisor.contract.schemas import Diagnosis, History
    from advisor.workflows.running import run

    started = time.perf_counter()
    try:
        result = run(plan, out_dir=out_dir)
        metrics = dict(result.metrics)
    except EngineError:  # diverged: the run directory still has the history and diagnosis
        metrics = {}
    diagnosis = load_model(Diagnosis, out_dir / "diagnosis.json")
    history = load_model(History, out_dir / "history.json")
    finite = [v for v in history.series.get("val_loss", []) if v is not None and math.isfinite(v)]
    return {
        "val_loss": metrics.get("val_loss", math.inf),
        "best_val_loss": min(finite, default=math.inf),
        "val_accuracy": metrics.get("val_accuracy"),
        "problems": [p.name for p in diagnosis.problems],
        "fixes": [f.field for f in diagnosis.fixes],
        "next_plan": out_dir / "next_plan.json",
        "seconds": time.perf_counter() - started,
    }


def closed_loop(plan, workdir: Path) -> dict:
    """run -> diagnose -> run next_plan.json; the two runs' numbers side by side."""
    from advisor.contract.loading import load_plan

    first = run_and_diagnose(plan, workdir / "first")
    second = run_and_diagnose(load_plan(first["next_plan"]), workdir / "second")
    return {
        "problems": first["problems"],
        "fixes": first["fixes"],
        "before": {k: first[k] for k in ("val_loss", "best_val_loss", "val_accuracy")},
        "after": {k: second[k] for k in ("val_loss", "best_val_loss", "val_accuracy")},
        "after_problems": second["problems"],
        "improved": second["val_loss"] < first["val_loss"],
        "seconds": first["seconds"] + second["seconds"],
    }


def _fmt(value) -> str:
    if value is None:
        return "-"
    return "inf (diverged)" if value == math.inf else f"{value:.4f}"


def main(argv: list[str]) -> None:
    from diagnosis_support import example_plan

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, (base, changes)) in enumerate(BAD_PLANS.items()):
            rows[name] = closed_loop(example_plan(base, changes), Path(tmp) / f"case{i}")
    if "--json" in argv:
        print(json.dumps(rows, indent=1, default=str))
        return
    print(
        "| bad plan | diagnosis | fields changed | val_loss before -> after | val_accuracy before -> after | better |"
    )
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(
            f"| {name} | {', '.join(row['problems'])} | {', '.join(row['fixes'])} | "
            f"{_fmt(row['before']['val_loss'])} -> {_fmt(row['after']['val_loss'])} | "
            f"{_fmt(row['before']['val_accuracy'])} -> {_fmt(row['after']['val_accuracy'])} | "
            f"{'yes' if row['improved'] else 'NO'} |"
        )
    print(
        f"\n{sum(r['improved'] for r in rows.values())} of {len(rows)} revised plans improved the validation loss; "
        f"{sum(r['seconds'] for r in rows.values()):.0f} s of training in all"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
