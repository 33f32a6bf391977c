"""Gradient-boosted trees beside the network: asked for by small-table plans, reported by runs."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.contract.schemas import RunResult
from advisor.expert.recommending import recommend
from advisor.workflows.running import summary
from engine.datasets.data import Dataset
from engine.training.baselines import fit_baselines

SMALL_TABLE = {
    "task": "binary",
    "modality": "tabular",
    "n_train": 400,
    "input_shape": [5],
    "n_classes": 2,
}


def _dataset(task: str, n: int = 500, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    signal = x[:, 0] + 0.5 * x[:, 1] ** 2
    y = (signal > np.median(signal)).astype(np.int32) if task == "binary" else signal[:, None]
    cut = int(0.8 * n)
    return Dataset(x[:cut], y[:cut], x[cut:], y[cut:], (5,), 2 if task == "binary" else None)


def test_a_small_table_plan_asks_for_the_tree_baseline_and_an_image_plan_does_not():
    assert recommend(SMALL_TABLE).baselines == ["hist_gradient_boosting"]
    image = {
        "task": "multiclass",
        "modality": "image",
        "n_train": 400,
        "input_shape": [8, 8, 1],
        "n_classes": 3,
    }
    assert recommend(image).baselines == []


def test_trees_are_scored_on_the_validation_split_under_the_network_metric_names():
    plan = recommend(SMALL_TABLE)
    scores = fit_baselines(plan, _dataset("binary"))
    assert set(scores) == {"hist_gradient_boosting"}
    accuracy = scores["hist_gradient_boosting"]["val_accuracy"]
    assert 0.8 < accuracy <= 1.0  # a clean signal: far above the 0.5 of chance


def test_regression_trees_report_rmse_mae_and_r2_that_agree():
    plan = recommend(
        {"task": "regression", "modality": "tabular", "n_train": 400, "input_shape": [5]}
    )
    data = _dataset("regression")
    scores = fit_baselines(plan, data)["hist_gradient_boosting"]
    assert scores["val_mae"] <= scores["val_rmse"]
    variance = float(np.var(data.y_val))
    assert scores["val_r2"] == pytest.approx(1 - scores["val_rmse"] ** 2 / variance, rel=1e-4)
    assert scores["val_r2"] > 0.5


def test_a_plan_without_baselines_fits_nothing():
    plan = recommend(SMALL_TABLE).model_copy(update={"baselines": []})
    assert fit_baselines(plan, _dataset("binary")) == {}


def test_the_run_summary_puts_the_baseline_beside_the_network():
    result = RunResult(
        run_dir="runs/x",
        plan="runs/x/plan.json",
        history="runs/x/history.json",
        metrics={"val_accuracy": 0.875, "val_loss": 0.31},
        device="cpu",
        baselines={"hist_gradient_boosting": {"val_accuracy": 0.9}},
    )
    assert "baseline hist_gradient_boosting, same split: accuracy 0.9 (network 0.875)" in summary(
        result
    )
