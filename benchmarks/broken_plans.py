"""Repairs of broken plans: does the loop name what was broken and mend it?

    python benchmarks/broken_plans.py              # every plan: the table and the share repaired
    python benchmarks/broken_plans.py --quick      # the 3-plan slice the tests run
    python benchmarks/broken_plans.py --json FILE  # also write every row to FILE

Each plan starts from what ``advisor recommend`` gives for a bundled profile
(examples/profiles/), with one thing broken on purpose; the name of the problem
that the break plants is written down next to it.  The broken plan is run
(``advisor.run``), its run directory's diagnosis read, and the next_plan.json
that diagnosis wrote is run in turn.  A plan counts as repaired when the
diagnosis names the planted problem and the revised run's best validation loss
is lower than the broken run's (a diverged run has an infinite one).  A
diagnosis is contradictory when it holds two findings that cannot both be true
of one run (the pairs in CONTRADICTORY).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Findings that cannot both hold for one run.
CONTRADICTORY: tuple[tuple[str, str], ...] = (
    ("lr_too_high", "lr_too_low"),
    ("overfitting", "underfitting"),
    ("exploding_gradients", "vanishing_gradients"),
    ("not_converged", "plateau"),
    ("diverged", "not_converged"),
)

# Plans a single change stops these being "the same plan": the runs stay short.
_NO_SEARCH = {"search": None}
_BARE = {"regularization.early_stopping": None, "schedule.name": "constant", "search": None}


@dataclass(frozen=True)
class Broken:
    """One deliberately broken plan: a profile's recommended plan with ``changes`` applied.

    ``planted`` holds the names a correct diagnosis may give the planted problem,
    the usual name first (a 3-epoch run is ``not_converged``, or ``inconclusive``
    for too few epochs, both of which ask for more epochs).
    """

    name: str
    profile: str
    changes: dict[str, Any]
    planted: tuple[str, ...]
    quick: bool = False


_DIGITS_SMALL = {"data.source.subsample": 400, "n_train": 400}
_SHAPES_SMALL = {
    "data.source.n_samples": 300,
    "data.source.image_size": [16, 16],
    "input_shape": [16, 16, 1],
    "n_train": 240,
    "model.filters": [8, 16],
}

BROKEN: tuple[Broken, ...] = (
    # ---- learning rate far too high
    Broken(
        "adam lr 0.05, constant (digits, 400 rows)",
        "digits_mlp",
        {**_BARE, **_DIGITS_SMALL, "optimizer.learning_rate": 0.05, "epochs": 20},
        ("lr_too_high",),
        quick=True,
    ),
    Broken(
        "adam lr 0.1, constant (breast cancer)",
        "breast_cancer_binary",
        {**_BARE, "optimizer.learning_rate": 0.1, "epochs": 40},
        ("lr_too_high",),
    ),
    Broken(
        "sgd lr 5.0 (digits, diverges)",
        "digits_mlp",
        {**_BARE, "optimizer.name": "sgd", "optimizer.learning_rate": 5.0, "epochs": 20},
        ("diverged",),
    ),
    Broken(
        "gd lr 50 (wine, diverges)",
        "wine_random_search",
        {**_NO_SEARCH, "optimizer.learning_rate": 50.0, "epochs": 40},
        ("diverged",),
    ),
    Broken(
        "adamw lr 0.3 (diabetes regression)",
        "diabetes_regression",
        {**_BARE, "optimizer.learning_rate": 0.3, "epochs": 40},
        ("lr_too_high", "diverged"),
    ),
    Broken(
        "adam lr 0.05, small CNN (shapes)",
        "shapes_cnn_grid",
        {**_BARE, **_SHAPES_SMALL, "optimizer.learning_rate": 0.05, "epochs": 15},
        ("lr_too_high", "diverged"),
    ),
    # ---- learning rate far too low
    Broken(
        "adam lr 1e-5, constant (digits, 400 rows)",
        "digits_mlp",
        {**_BARE, **_DIGITS_SMALL, "optimizer.learning_rate": 1e-5, "epochs": 20},
        ("lr_too_low",),
        quick=True,
    ),
    Broken(
        "sgd lr 5e-4, constant (breast cancer)",
        "breast_cancer_binary",
        {**_BARE, "optimizer.name": "sgd", "optimizer.learning_rate": 5e-4, "epochs": 30},
        ("lr_too_low",),
    ),
    Broken(
        "adamw lr 1e-5 (diabetes regression)",
        "diabetes_regression",
        {**_BARE, "optimizer.learning_rate": 1e-5, "epochs": 30},
        ("lr_too_low",),
    ),
    # ---- too few epochs or updates
    Broken(
        "3 epochs (digits, 400 rows)",
        "digits_mlp",
        {**_NO_SEARCH, **_DIGITS_SMALL, "epochs": 3},
        ("not_converged", "inconclusive"),
        quick=True,
    ),
    Broken(
        "3 epochs, small CNN (shapes)",
        "shapes_cnn_grid",
        {**_NO_SEARCH, **_SHAPES_SMALL, "epochs": 3},
        ("not_converged", "inconclusive"),
    ),
    Broken(
        "full-batch adam, 15 epochs (digits)",
        "digits_mlp",
        {**_BARE, "batch_size": 1438, "epochs": 15},
        ("not_converged", "lr_too_low"),
    ),
    # ---- bad batch size
    Broken(
        "batch 1, sgd 0.1 (breast cancer)",
        "breast_cancer_binary",
        {
            **_BARE,
            "batch_size": 1,
            "optimizer.name": "sgd",
            "optimizer.learning_rate": 0.1,
            "epochs": 15,
        },
        ("lr_too_high",),
    ),
    # ---- network far too small
    Broken(
        "2 hidden units (digits)",
        "digits_mlp",
        {
            **_BARE,
            "model.units": 2,
            "model.hidden_layers": 1,
            "model.dropout": 0.0,
            "optimizer.learning_rate": 0.01,
            "epochs": 30,
        },
        ("underfitting",),
    ),
    Broken(
        "1 hidden unit (wine)",
        "wine_random_search",
        {
            **_BARE,
            "model.units": 1,
            "model.hidden_layers": 1,
            "model.dropout": 0.0,
            "optimizer.name": "adam",
            "optimizer.learning_rate": 0.01,
            "epochs": 60,
        },
        ("underfitting",),
    ),
    # ---- network far too large, regularization absent
    Broken(
        "4x1024, no dropout or early stopping (breast cancer, 100 rows)",
        "breast_cancer_binary",
        {
            **_BARE,
            "data.source.subsample": 100,
            "n_train": 100,
            "model.units": 1024,
            "model.hidden_layers": 4,
            "model.dropout": 0.0,
            "epochs": 60,
        },
        ("overfitting",),
    ),
    Broken(
        "3x512, no dropout or early stopping (digits, 150 rows)",
        "digits_mlp",
        {
            **_BARE,
            "data.source.subsample": 150,
            "n_train": 150,
            "model.units": 512,
            "model.hidden_layers": 3,
            "model.dropout": 0.0,
            "epochs": 80,
        },
        ("overfitting",),
    ),
    Broken(
        "no regularization at all (iris, 45 rows)",
        "iris_tiny",
        {
            **_BARE,
            "model.units": 256,
            "model.hidden_layers": 2,
            "model.dropout": 0.0,
            "regularization.augmentation": [],
            "optimizer.name": "adam",
            "optimizer.learning_rate": 0.01,
            "optimizer.weight_decay": 0.0,
            "batch_size": 8,
            "epochs": 150,
        },
        ("overfitting",),
    ),
    # ---- regularization far too strong
    Broken(
        "dropout 0.9 on 4 units (digits)",
        "digits_mlp",
        {**_BARE, "model.units": 4, "model.dropout": 0.9, "epochs": 30},
        ("underfitting",),
    ),
    Broken(
        "dropout 0.9 (breast cancer)",
        "breast_cancer_binary",
        {**_BARE, "model.units": 16, "model.dropout": 0.9, "epochs": 30},
        ("underfitting",),
    ),
    Broken(
        "weight decay 30 (digits)",
        "digits_mlp",
        {**_BARE, "optimizer.name": "adamw", "optimizer.weight_decay": 30.0, "epochs": 30},
        ("underfitting",),
    ),
    # ---- schedule
    Broken(
        "exponential decay x0.01 per epoch (digits)",
        "digits_mlp",
        {
            **_NO_SEARCH,
            "regularization.early_stopping": None,
            "schedule.name": "exponential",
            "schedule.factor": 0.01,
            "epochs": 30,
        },
        ("plateau", "lr_too_low", "underfitting"),
    ),
    # ---- activation
    Broken(
        "6 sigmoid layers, plain sgd (digits)",
        "digits_mlp",
        {
            **_BARE,
            "optimizer.name": "sgd",
            "optimizer.learning_rate": 0.05,
            "model.activation": "sigmoid",
            "model.hidden_layers": 6,
            "model.units": 32,
            "model.dropout": 0.0,
            "epochs": 30,
        },
        ("vanishing_gradients", "underfitting", "plateau"),
    ),
)


def broken_plan(case: Broken):
    """The profile's recommended plan with the case's changes (steps per epoch kept consistent)."""
    from advisor import recommend
    from advisor.contract.schemas import Plan

    data = recommend(ROOT / "examples" / "profiles" / f"{case.profile}.json").model_dump(
        mode="json"
    )
    for path, value in case.changes.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = copy.deepcopy(value)
    data["explanations"] = {
        k: v
        for k, v in data["explanations"].items()
        if not any(k == p or k.startswith(p + ".") or p.startswith(k + ".") for p in case.changes)
    }
    data["steps_per_epoch"] = math.ceil(data["n_train"] / data["batch_size"])
    data["name"] = f"broken-{case.profile}"
    return Plan.model_validate(data)


def run_and_read(plan, out_dir: Path) -> dict[str, Any]:
    """Run a plan; its best validation loss, the diagnosis' findings and fixes, next_plan.json."""
    from advisor.contract.errors import EngineError
    from advisor.contract.io import load_model
    from advisor.contract.schemas import Diagnosis, History
    from advisor.workflows.running import run

    started = time.perf_counter()
    try:
        run(plan, out_dir=out_dir)
    except EngineError:  # diverged: the run directory still has the history and the diagnosis
        pass
    diagnosis = load_model(Diagnosis, out_dir / "diagnosis.json")
    history = load_model(History, out_dir / "history.json")
    finite = [v for v in history.series.get("val_loss", []) if v is not None and math.isfinite(v)]
    findings = [p.name for p in diagnosis.problems]
    primary = getattr(diagnosis, "primary", None)
    if primary is not None and not isinstance(primary, str):
        primary = getattr(primary, "name", str(primary))
    outcome = getattr(diagnosis, "outcome", None)
    return {
        "best_val_loss": min(finite, default=math.inf),
        "epochs_run": len(history.epochs),
        "findings": findings,
        "primary": primary,
        "outcome": outcome,
        "fixes": [
            {"field": f.field, "old": f.old, "new": f.new, "problem": f.problem, "rule": f.rule}
            for f in diagnosis.fixes
        ],
        "next_plan": out_dir / "next_plan.json",
        "seconds": round(time.perf_counter() - started, 1),
    }


def contradictions(findings: list[str]) -> list[str]:
    """The CONTRADICTORY pairs both present in one diagnosis, and healthy beside any problem."""
    found = set(findings)
    pairs = [f"{a}+{b}" for a, b in CONTRADICTORY if a in found and b in found]
    if "healthy" in found and len(found) > 1:
        pairs.append("healthy+" + "+".join(sorted(found - {"healthy"})))
    return pairs


def named(case: Broken, first: dict[str, Any]) -> bool:
    """The diagnosis names the planted problem (a finding, or the inconclusive outcome)."""
    names = set(first["findings"]) | {first["primary"], first["outcome"]}
    return bool(names & set(case.planted))


def repair(case: Broken, workdir: Path) -> dict[str, Any]:
    """Broken run -> diagnosis -> revised run; one row of the table."""
    from advisor.contract.loading import load_plan

    first = run_and_read(broken_plan(case), workdir / "broken")
    next_plan = load_plan(first["next_plan"])
    second = run_and_read(next_plan, workdir / "revised")
    improved = second["best_val_loss"] < first["best_val_loss"]
    is_named = named(case, first)
    return {
        "plan": case.name,
        "profile": case.profile,
        "planted": case.planted[0],
        "accepted_names": list(case.planted),
        "findings": first["findings"],
        "primary": first["primary"],
        "named": is_named,
        "contradictions": contradictions(first["findings"]),
        "fixes": first["fixes"],
        "plan_changed": bool(first["fixes"]),
        "before": first["best_val_loss"],
        "after": second["best_val_loss"],
        "improved": improved,
        "repaired": is_named and improved,
        "revised_findings": second["findings"],
        "seconds": first["seconds"] + second["seconds"],
    }


def _loss(value: float) -> str:
    return "inf" if value == math.inf else f"{value:.4f}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| broken plan | planted | diagnosis | named | fixes "
        "| best val_loss before -> after | improved | contradictions |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fixes = ", ".join(
            f"{f['field']} {_short(f['old'])}->{_short(f['new'])}" for f in r["fixes"]
        )
        lines.append(
            f"| {r['plan']} | {r['planted']} | {', '.join(r['findings']) or '-'} | "
            f"{'yes' if r['named'] else 'NO'} | {fixes or 'none'} | "
            f"{_loss(r['before'])} -> {_loss(r['after'])} | {'yes' if r['improved'] else 'NO'} | "
            f"{', '.join(r['contradictions']) or '-'} |"
        )
    repaired = sum(r["repaired"] for r in rows)
    contradictory = sum(bool(r["contradictions"]) for r in rows)
    lines.append("")
    lines.append(
        f"repaired (planted problem named and best validation loss lower): {repaired} of "
        f"{len(rows)} ({100 * repaired / len(rows):.0f} %); named {sum(r['named'] for r in rows)}, "
        f"improved {sum(r['improved'] for r in rows)}, contradictory diagnoses {contradictory}"
    )
    return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={_short(v)}" for k, v in value.items() if v is not None) + "}"
    return json.dumps(value) if isinstance(value, list) else str(value)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 3 plans the tests run")
    parser.add_argument("--json", metavar="FILE", help="write every row to FILE")
    parser.add_argument("--only", metavar="TEXT", help="only plans whose name contains TEXT")
    parser.add_argument("--keep", metavar="DIR", help="keep the run directories under DIR")
    args = parser.parse_args(argv)
    cases = [c for c in BROKEN if c.quick or not args.quick]
    if args.only:
        cases = [c for c in cases if args.only in c.name]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases):
            rows.append(repair(case, Path(args.keep or tmp) / f"case{i}"))
            print(
                f"[{i + 1}/{len(cases)}] {case.name}: repaired={rows[-1]['repaired']}",
                file=sys.stderr,
            )
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return rows


if __name__ == "__main__":
    main()
