"""Trials trained together under vmap (engine.searching.population, engine.searching.trials).

The central promise: a trial trained in a population — vmapped with others,
or in turn through the shared compiled program — has the history that
training its plan alone (engine.training.fit, as ``advisor run`` does) gives, within
float tolerance.  Checked with every per-trial value varying at once, and with
early stopping, reduce-on-plateau and divergence acting per trial.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from engine.datasets.data import load_data
from engine.searching.population import ModeChoice, Population
from engine.searching.space import structure_key, trial_plan
from engine.searching.trials import train_trials
from engine.training.fit import Diverged
from tests.engine_plans import fit_plan, make_plan

SERIES = ("loss", "val_loss", "accuracy", "val_accuracy", "lr", "grad_norm", "update_ratio")
SEARCHED = [
    "optimizer.learning_rate",
    "optimizer.weight_decay",
    "optimizer.momentum",
    "model.dropout",
    "regularization.augmentation[0].strength",
]
# learning rate, weight decay, momentum (0 = none), dropout (0 = none), noise strength: each of the
# values that change the lone run's program (no decay, no momentum, no dropout) against one that does
VALUES = [(0.01, 0.0, 0.9, 0.0, 0.05), (0.2, 1e-2, 0.0, 0.5, 0.1)]


def _trials(base, values):
    return [trial_plan(base, dict(zip(SEARCHED, v, strict=True))) for v in values]


def _assert_same_history(alone, together, rtol=1e-5, atol=1e-6):
    assert together.epochs == alone.epochs
    assert together.best_epoch == alone.best_epoch
    assert together.stopped_reason == alone.stopped_reason
    for name in SERIES:
        np.testing.assert_allclose(
            together.series[name], alone.series[name], rtol=rtol, atol=atol, err_msg=name
        )


@pytest.fixture(scope="module")
def varied():
    base = make_plan(
        **{
            "optimizer.name": "sgd",
            "optimizer.momentum": 0.9,
            "model.dropout": 0.2,
            "epochs": 4,
            "regularization.augmentation": [{"name": "noise", "strength": 0.05}],
            "schedule.name": "warmup_cosine",
            "schedule.warmup_epochs": 1,
        }
    )
    plans = _trials(base, VALUES)
    population = Population(plans, SEARCHED, load_data(base), jax.devices("cpu")[0])
    return plans, population, [fit_plan(p) for p in plans]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["population", "sequential"])
def test_a_trial_in_a_population_matches_training_it_alone(varied, mode):
    plans, population, alone = varied
    outcomes = train_trials(population, range(len(plans)), mode)
    for reference, outcome in zip(alone, outcomes, strict=True):
        assert outcome.status == "complete"
        _assert_same_history(reference, outcome.result)


@pytest.mark.slow
def test_early_stopping_plateau_and_divergence_act_per_trial():
    base = make_plan(
        **{
            "epochs": 8,
            "optimizer.name": "sgd",
            "schedule.name": "reduce_on_plateau",
            "schedule.patience": 1,
            "schedule.factor": 0.5,
            "regularization.early_stopping": {
                "monitor": "val_loss",
                "patience": 2,
                "min_delta": 0.01,
            },
        }
    )
    plans = [trial_plan(base, {"optimizer.learning_rate": lr}) for lr in (1.0, 3.0, 1000.0)]
    population = Population(
        plans, ["optimizer.learning_rate"], load_data(base), jax.devices("cpu")[0]
    )
    outcomes = train_trials(population, range(3), "population")
    alone = [fit_plan(p) for p in plans[:2]]
    with pytest.raises(Diverged) as diverged:
        fit_plan(plans[2])
    alone.append(diverged.value.result)
    assert [o.status for o in outcomes] == ["complete", "complete", "diverged"]
    assert [len(r.epochs) for r in alone[:2]] == [8, 7], "all epochs; stopped early"
    assert len(alone[2].epochs) <= 2, "a rate of 1000 (the plan's upper bound) diverges at once"
    assert alone[0].series["lr"][-1] < 1.0 and alone[1].series["lr"][-1] < 3.0, (
        "each trial's own plateau drops"
    )
    for reference, outcome in zip(alone, outcomes, strict=True):
        _assert_same_history(reference, outcome.result)


def test_pruning_ends_a_trial_where_the_callback_says(varied):
    plans, population, _ = varied
    outcomes = train_trials(
        population,
        range(2),
        "population",
        on_epoch=lambda member, epoch, values: member == 1 and epoch == 2,
    )
    assert [o.status for o in outcomes] == ["complete", "pruned"]
    assert outcomes[1].result.epochs == [1, 2]
    assert outcomes[0].result.epochs == [1, 2, 3, 4]


def test_mode_is_timed_or_forced_and_one_trial_is_sequential(varied):
    _, population, _ = varied
    timed = population.choose_mode(2)
    assert timed.measured and timed.population_s > 0 and timed.sequential_s > 0
    assert timed.steps == 4 * population.steps_per_epoch
    assert timed.expected_s(timed.mode) == min(
        timed.expected_s("population"), timed.expected_s("sequential")
    )
    assert population.choose_mode(2, "sequential").mode == "sequential"
    assert population.choose_mode(1).mode == "sequential"


def test_the_faster_mode_counts_its_compile():
    # 8 trials; a population step is 4x the trials' steps in turn, but compiles 10 s against 1 s
    choice = ModeChoice(
        "",
        8,
        population_s=0.5,
        sequential_s=0.25,
        population_compile_s=10.0,
        sequential_compile_s=1.0,
        steps=1000,
    )
    assert choice.speedup == 4.0
    assert choice.expected_s("population") == 510.0 and choice.expected_s("sequential") == 2001.0
    # over 4 devices the 8 sequential trials train one per device: 2 in turn on each
    spread = ModeChoice("", 8, 0.5, 0.25, 10.0, 1.0, steps=1000, lanes=4)
    assert spread.expected_s("sequential") == 501.0 and spread.expected_s("population") == 510.0
    assert ModeChoice("", 7, 0.5, 0.25, 10.0, 1.0, steps=1000, lanes=4).expected_s(
        "sequential"
    ) == spread.expected_s("sequential")  # 7 trials on 4 devices: still 2 rounds
    short = ModeChoice("", 8, 0.5, 0.25, 10.0, 1.0, steps=2)
    assert short.expected_s("population") > short.expected_s("sequential"), (
        "short trials do not pay back the compile"
    )


def test_structure_keys_group_by_what_changes_the_program():
    base = make_plan()
    assert structure_key(
        trial_plan(base, {"optimizer.learning_rate": 0.1, "model.dropout": 0.3})
    ) == structure_key(base)
    assert structure_key(trial_plan(base, {"model.units": 32})) != structure_key(base)
    assert structure_key(trial_plan(base, {"batch_size": 16})) != structure_key(base)
