"""The closed loop on the engine: four deliberately bad plans are run, diagnosed and
revised, and the revised plan's run has a better validation loss.  Small versions of
the rows of benchmarks/diagnosis_closed_loop.py (the full table is in RESULTS.md)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
from diagnosis_support import example_plan

pytest.importorskip("jax")

_SPEC = importlib.util.spec_from_file_location(
    "diagnosis_closed_loop", Path(__file__).parents[1] / "benchmarks" / "diagnosis_closed_loop.py"
)
loop = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(loop)

_BARE = {"regularization.early_stopping": None, "schedule.name": "constant", "search": None}
SMALL = {
    "lr far too high": (
        {
            **_BARE,
            "data.source.subsample": 400,
            "n_train": 400,
            "optimizer.learning_rate": 0.05,
            "epochs": 15,
        },
        {"lr_too_high"},
        {"optimizer.learning_rate"},
    ),
    "lr far too high, recommended plan (early stopping ends it)": (
        {
            "search": None,
            "data.source.subsample": 400,
            "n_train": 400,
            "optimizer.learning_rate": 0.05,
            "epochs": 20,
        },
        {"lr_too_high"},
        {"optimizer.learning_rate"},
    ),
    "lr far too low": (
        {
            **_BARE,
            "data.source.subsample": 400,
            "n_train": 400,
            "optimizer.name": "sgd",
            "optimizer.learning_rate": 0.0005,
            "epochs": 12,
        },
        {"lr_too_low"},
        {"optimizer.learning_rate"},
    ),
    "big model, 150 samples": (
        {
            **_BARE,
            "data.source.subsample": 150,
            "n_train": 150,
            "model.units": 512,
            "model.hidden_layers": 3,
            "model.dropout": 0.0,
            "epochs": 100,
        },
        {"overfitting"},
        {"regularization.early_stopping", "model.dropout"},
    ),
    "tiny model, hard task": (
        {
            **_BARE,
            "data.source.subsample": 400,
            "n_train": 400,
            "model.units": 2,
            "model.hidden_layers": 1,
            "model.dropout": 0.0,
            "optimizer.learning_rate": 0.01,
            "epochs": 40,
        },
        {"underfitting"},
        {"model.units"},
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SMALL))
def test_revised_plan_improves_the_validation_loss(name, tmp_path):
    changes, problems, fields = SMALL[name]
    row = loop.closed_loop(example_plan("digits_mlp", changes), tmp_path)
    assert problems <= set(row["problems"]), row
    assert fields <= set(row["fixes"]), row
    if "lr_too_high" in row["problems"]:  # the optimisation is fixed first, regularisers wait
        waiting = {"model.dropout", "optimizer.weight_decay", "regularization.augmentation"}
        assert not waiting & set(row["fixes"]), row
    assert math.isfinite(row["after"]["val_loss"])
    if "lr_too_high" in row["after_problems"]:
        # still unstable (the loop would revise it again): its last epoch is one sample
        # of a noisy curve, so the two runs' best epochs are compared
        assert row["after"]["best_val_loss"] < row["before"]["best_val_loss"], row
    else:
        assert row["after"]["val_loss"] < row["before"]["val_loss"], row
