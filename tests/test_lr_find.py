"""advisor lr-find: seeds that agree give a rate and its spread; seeds that disagree give none, and say why."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from advisor.cli.commands import cli
from advisor.contract.io import write_model
from advisor.contract.loading import load_profile
from advisor.contract.schemas import LrFindSeed
from advisor.expert.recommending import recommend
from engine.searching.lr_find import best_rate, verdict
from tests.engine_plans import make_plan

RATES = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]


def sweep(seed: int, rate: float | None) -> LrFindSeed:
    return LrFindSeed(seed=seed, losses=[1.0] * len(RATES), learning_rate=rate)


def test_the_best_rate_is_the_minimum_of_the_smoothed_curve():
    assert best_rate(RATES, [2.0, 1.0, 0.5, 0.45, 3.0]) == 1e-2  # 0.45 sits next to a blow-up
    assert (
        best_rate(RATES, [2.0, 1.0, 0.5, 0.4, None]) == 1e-2
    )  # a diverged neighbour counts as infinite
    assert best_rate(RATES, [None] * 5) is None


def test_seeds_that_agree_give_the_geometric_mean_and_the_spread():
    result, refused = verdict(
        RATES, [sweep(0, 1e-2), sweep(1, 1e-2), sweep(2, 1e-1 / 10**0.5)], 0.5
    )
    assert refused is None
    assert result.learning_rate == pytest.approx(0.0147, rel=1e-2)
    assert result.spread == pytest.approx(0.5)


@pytest.mark.parametrize(
    "rates, reason",
    [
        (
            [1e-3, 1e-1, 1e-2],
            "the seeds disagree: their best rates (0.001, 0.1, 0.01) span 2.00 decades, more than 0.5",
        ),
        (
            [1e-4, 1e-4, 1e-4],
            "the best rate 0.0001 is the lowest one tried, so the best may lie beyond it; widen the range (--min-lr)",
        ),
        ([1e-2, None, 1e-2], "every rate diverged for seed 1; lower --min-lr"),
    ],
)
def test_no_rate_is_suggested_when_the_sweeps_cannot_be_trusted(rates, reason):
    result, refused = verdict(RATES, [sweep(i, r) for i, r in enumerate(rates)], 0.5)
    assert result is None
    assert refused.startswith(reason)


@pytest.mark.slow
def test_lr_find_writes_the_rate_into_a_profile_that_recommend_then_uses(tmp_path):
    plan = tmp_path / "plan.json"
    write_model(plan, make_plan(**{"epochs": 3}))
    profile = tmp_path / "profile.json"
    profile.write_text(
        json.dumps(
            {
                "task": "multiclass",
                "modality": "tabular",
                "n_train": 120,
                "input_shape": [4],
                "n_classes": 3,
            }
        )
    )
    result = CliRunner().invoke(
        cli,
        [
            "lr-find",
            str(plan),
            "--seeds",
            "2",
            "--points",
            "7",
            "--min-lr",
            "1e-4",
            "--max-lr",
            "10",
            "--steps",
            "12",
            "--profile",
            str(profile),
            "--out",
            str(tmp_path / "lr"),
            "--mode",
            "population",
        ],
    )
    assert result.exit_code == 0, result.output
    suggested = load_profile(profile).lr_find
    assert suggested is not None and 1e-3 < suggested.learning_rate < 1.0
    assert f"suggested learning rate: {suggested.learning_rate:.3g}" in result.output
    assert (tmp_path / "lr" / "lr_find.png").exists()
    report = json.loads((tmp_path / "lr" / "lr_find.json").read_text())
    assert len(report["seeds"]) == 2 and report["steps"] == 12
    planned = recommend(profile)
    assert planned.optimizer.learning_rate == suggested.learning_rate
    assert planned.explanations["optimizer.learning_rate"].rule == "learning_rate_from_range_test"
