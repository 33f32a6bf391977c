"""The broken-plan benchmark's quick slice (benchmarks/broken_plans.py --quick): a plan
with its learning rate far too high, one far too low and one with too few epochs are
run, diagnosed and run again from their own next plan.  The diagnosis names what was
broken, contradicts itself nowhere, and the revised run reaches a lower best
validation loss.  The full table is in benchmarks/RESULTS.md."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")

_SPEC = importlib.util.spec_from_file_location(
    "broken_plans", Path(__file__).parents[1] / "benchmarks" / "broken_plans.py"
)
bench = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = bench  # its dataclasses look their module up by name
_SPEC.loader.exec_module(bench)

QUICK = [case for case in bench.BROKEN if case.quick]


def test_the_benchmark_has_at_least_20_plans_and_a_3_plan_quick_slice():
    assert len(bench.BROKEN) >= 20 and len(QUICK) == 3
    assert len({case.name for case in bench.BROKEN}) == len(bench.BROKEN)
    profiles = {case.profile for case in bench.BROKEN}
    assert {"digits_mlp", "breast_cancer_binary", "shapes_cnn_grid"} <= profiles


def test_a_broken_plan_is_the_recommended_plan_with_only_its_changes():
    from advisor import recommend

    case = QUICK[0]
    base = recommend(bench.ROOT / "examples" / "profiles" / f"{case.profile}.json")
    broken = bench.broken_plan(case)
    assert broken.optimizer.learning_rate == case.changes["optimizer.learning_rate"]
    assert broken.model == base.model and broken.loss == base.loss
    assert broken.steps_per_epoch == math.ceil(broken.n_train / broken.batch_size)


def test_contradictions_are_pairs_that_cannot_both_hold():
    assert bench.contradictions(["lr_too_high", "lr_too_low", "dead_units"]) == [
        "lr_too_high+lr_too_low"
    ]
    assert bench.contradictions(["overfitting", "lr_too_high"]) == []
    assert bench.contradictions(["healthy", "overfitting"]) == ["healthy+overfitting"]


@pytest.mark.slow
@pytest.mark.parametrize("case", QUICK, ids=[case.name for case in QUICK])
def test_a_broken_plan_is_named_and_repaired_by_its_own_next_plan(case, tmp_path):
    row = bench.repair(case, tmp_path)
    assert row["named"], row
    assert row["contradictions"] == [], row
    assert row["plan_changed"], row
    assert row["after"] < row["before"], row
