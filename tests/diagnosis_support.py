"""Shared by the diagnosis tests: the labelled collection, a plan to revise, and
the history writers of tests/data/histories (imported from there, not copied)."""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path
from typing import Any

from advisor.contract.schemas import Plan

HISTORIES = Path(__file__).parent / "data" / "histories"
EXAMPLE_PLANS = Path(__file__).parents[1] / "examples" / "plans"
if str(HISTORIES) not in sys.path:
    sys.path.insert(0, str(HISTORIES))

import formats  # noqa: E402  (tests/data/histories/formats.py)


def hand(stem: str) -> Path:
    """The collection's history named ``stem`` (e.g. 'overfitting_rise_00'), whatever its format."""
    (path,) = [p for p in (HISTORIES / "hand").iterdir() if p.name.split(".")[0] == stem]
    return path


def labelled(parts: tuple[str, ...] = ("labels", "engine_labels")) -> dict[str, dict[str, Any]]:
    """relative path -> {labels, task, n_classes, kind}: the hand-made collection
    (labels.json) and the engine runs (engine_labels.json)."""
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        out.update(json.loads((HISTORIES / f"{part}.json").read_text()))
    return out


def example_plan(name: str, changes: dict[str, Any]) -> Plan:
    """An examples/plans/ plan with dotted-path changes, steps per epoch kept consistent."""
    data = json.loads((EXAMPLE_PLANS / f"{name}.json").read_text())
    data["explanations"], data["derived_facts"] = {}, {}
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = copy.deepcopy(value)
    data["steps_per_epoch"] = math.ceil(data["n_train"] / data["batch_size"])
    return Plan.model_validate(data)


def plan(**changes: Any) -> Plan:
    """A small valid plan (digits MLP) with dotted-path changes, e.g. plan(**{"model.dropout": 0.4})."""
    data: dict[str, Any] = {
        "task": "multiclass",
        "modality": "image",
        "input_shape": [8, 8, 1],
        "n_classes": 10,
        "n_train": 1400,
        "data": {"source": {"kind": "builtin", "name": "digits"}},
        "model": {
            "arch": "mlp",
            "hidden_layers": 2,
            "units": 64,
            "dropout": 0.1,
            "output_units": 10,
        },
        "loss": {"name": "sparse_categorical_crossentropy"},
        "optimizer": {"name": "adam", "learning_rate": 0.001},
        "schedule": {"name": "constant"},
        "batch_size": 32,
        "epochs": 30,
        "steps_per_epoch": 44,
        "class_mode": "categorical",
        "freeze": {"strategy": "from_scratch"},
        "regularization": {},
        "metrics": ["accuracy"],
        "explanations": {
            "model.dropout": {
                "value": 0.1,
                "rule": "recommend_dropout",
                "reason": "r",
                "source": "s",
            },
            "optimizer.learning_rate": {
                "value": 0.001,
                "rule": "recommend_lr",
                "reason": "r",
                "source": "s",
            },
        },
    }
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return Plan.model_validate(data)


def score(pairs: list[tuple[set[str], set[str]]], names) -> dict[str, dict[str, float]]:
    """Per label: support, precision and recall over (expected, predicted) label sets."""
    table = {}
    for name in names:
        tp = sum(name in want and name in got for want, got in pairs)
        fp = sum(name not in want and name in got for want, got in pairs)
        fn = sum(name in want and name not in got for want, got in pairs)
        table[name] = {
            "support": tp + fn,
            "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0,
        }
    return table


__all__ = [
    "EXAMPLE_PLANS",
    "HISTORIES",
    "example_plan",
    "formats",
    "hand",
    "labelled",
    "plan",
    "score",
]
