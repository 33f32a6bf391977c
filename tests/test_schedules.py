"""Schedules by name, the generic warmup, and the reduce-on-plateau controller."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advisor.contract.errors import InputError
from advisor.contract.schemas import SchedulePlan
from engine.optim.schedules import SCHEDULES, PlateauController, build_schedule, plateau_controller

pytestmark = pytest.mark.usefixtures("strict_jax")

BASE = 0.1
SPE = 10  # steps per epoch
EPOCHS = 6

# name, plan fields, {step: expected rate} — the rates worked by hand.
SCHEDULE_CASES = [
    ("constant", {}, {0: BASE, 59: BASE}),
    # x0.5 every 2 epochs = every 20 steps
    ("step", {"step_epochs": 2, "factor": 0.5}, {0: BASE, 19: BASE, 20: BASE / 2, 40: BASE / 4}),
    # x0.5 per epoch, continuous: half an epoch in -> 2^-0.5
    ("exponential", {"factor": 0.5}, {0: BASE, 5: BASE * 0.5**0.5, 10: BASE / 2, 20: BASE / 4}),
    # 60 steps of half cosine to 0.1 * BASE: midway (1 + .1)/2
    ("cosine", {"min_ratio": 0.1}, {0: BASE, 30: BASE * 0.55, 60: BASE * 0.1}),
    # 2 warmup epochs: (step + 1)/20 of BASE; then cosine over the remaining 40 steps to 0
    (
        "warmup_cosine",
        {"warmup_epochs": 2},
        {0: BASE / 20, 9: BASE / 2, 19: BASE, 20: BASE, 40: BASE / 2, 60: 0.0},
    ),
    # cycles of 2 epochs = 20 steps, floor 0: restart at 20 and 40
    (
        "cosine_restarts",
        {"cycle_epochs": 2},
        {0: BASE, 10: BASE / 2, 20: BASE, 30: BASE / 2, 45: BASE * (1 + math.cos(math.pi / 4)) / 2},
    ),
    ("reduce_on_plateau", {"patience": 3}, {0: BASE, 59: BASE}),
]


@pytest.mark.parametrize(
    "name, fields, expected", SCHEDULE_CASES, ids=[c[0] for c in SCHEDULE_CASES]
)
def test_schedule_rates(name, fields, expected):
    schedule = build_schedule(SchedulePlan(name=name, **fields), BASE, SPE, EPOCHS)
    compiled = jax.jit(schedule)
    for step, rate in expected.items():
        np.testing.assert_allclose(
            schedule(step), rate, rtol=1e-5, atol=1e-8, err_msg=f"step {step}"
        )
        np.testing.assert_allclose(compiled(jnp.int32(step)), rate, rtol=1e-5, atol=1e-8)


def test_every_schedule_has_a_case():
    assert set(SCHEDULES.names()) == {case[0] for case in SCHEDULE_CASES}


def test_warmup_applies_to_any_schedule():
    plan = SchedulePlan(name="step", warmup_epochs=1, step_epochs=2, factor=0.5)
    schedule = build_schedule(plan, BASE, SPE, EPOCHS)
    # 10 warmup steps, then the step schedule from its own step 0: first drop 20 steps later.
    rates = {0: BASE / 10, 9: BASE, 10: BASE, 29: BASE, 30: BASE / 2}
    for step, rate in rates.items():
        np.testing.assert_allclose(schedule(step), rate, rtol=1e-6)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"name": "warmup_cosine"}, r"^schedule.warmup_epochs: warmup_cosine needs at least 1"),
        (
            {"name": "cosine", "warmup_epochs": 6},
            r"^schedule.warmup_epochs: 6 leaves no epoch of the 6",
        ),
        ({"name": "step"}, r"^schedule.step_epochs: required for schedule 'step'$"),
        ({"name": "cosine_restarts"}, r"^schedule.cycle_epochs: required"),
        ({"name": "reduce_on_plateau"}, r"^schedule.patience: required"),
    ],
)
def test_plans_the_schedule_cannot_run_name_the_field(fields, message):
    with pytest.raises(InputError, match=message):
        build_schedule(SchedulePlan(**fields), BASE, SPE, EPOCHS)


# ----------------------------------------------------------------------------- plateau


def _run(controller, values):
    return [controller.update(v) for v in values]


def test_plateau_drops_after_patience_on_positive_values():
    values = [1.0, 0.8, 0.8, 0.8, 0.8, 0.8, 0.5, 0.5, 0.5]
    scales = _run(PlateauController(factor=0.5, patience=2, min_delta=0.0), values)
    assert scales == [1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]


def test_plateau_drops_on_a_flat_negative_series():
    scales = _run(PlateauController(factor=0.1, patience=2, min_delta=0.0), [-1.0] * 6)
    np.testing.assert_allclose(scales, [1, 1, 0.1, 0.1, 0.01, 0.01])


def test_plateau_keeps_the_rate_while_negative_values_fall():
    values = [-1.0, -2.0, -3.0, -4.0, -5.0]
    assert _run(PlateauController(factor=0.5, patience=1), values) == [1.0] * 5


def test_plateau_across_zero_and_min_delta():
    # -0.00005 beats 0.0 by less than min_delta=1e-4: not an improvement.
    values = [0.3, 0.1, 0.0, -0.00005, 0.2, -0.2, -0.2]
    scales = _run(PlateauController(factor=0.5, patience=2), values)
    assert scales == [1, 1, 1, 1, 0.5, 0.5, 0.5]
    # a worsening negative value is no improvement either
    assert _run(PlateauController(factor=0.5, patience=2), [-3.0, -2.9, -2.8]) == [1, 1, 0.5]


def test_plateau_cooldown_mode_max_and_nan():
    values = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    # drop at epoch 2, then 2 cooldown epochs that do not count, then 1 more epoch -> drop
    scales = _run(PlateauController(factor=0.5, patience=1, cooldown=2, min_delta=0.0), values)
    assert scales == [1, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert _run(PlateauController(0.5, 1, mode="max"), [0.5, 0.6, 0.7, 0.6]) == [1, 1, 1, 0.5]
    assert _run(PlateauController(0.5, 1), [1.0, float("nan")]) == [1, 0.5]


def test_plateau_controller_from_a_plan():
    controller = plateau_controller(SchedulePlan(name="reduce_on_plateau", patience=4, factor=0.2))
    assert (controller.patience, controller.factor) == (4, 0.2)
    assert plateau_controller(SchedulePlan(name="cosine")) is None
    with pytest.raises(InputError, match="^schedule.factor: 1.0 does not reduce the rate"):
        PlateauController(factor=1.0, patience=2)


def _optax_scales(values, patience):
    tx = optax.contrib.reduce_on_plateau(factor=0.1, patience=patience)
    params = {"w": jnp.zeros(1, jnp.float32)}
    scales = []
    with jax.numpy_dtype_promotion("standard"):  # optax's own code is not strict-clean
        state = tx.init(params)
        for value in values:
            _, state = tx.update(params, state, value=jnp.float32(value))
            scales.append(float(state.scale))
    return scales


def test_optax_reduce_on_plateau_misses_a_negative_plateau():
    """Why the controller exists: optax's relative test ``v < (1 - rtol) * best`` is
    inverted for a negative best, so a flat negative series 'improves' forever."""
    positive = _optax_scales([1.0] * 6, patience=2)
    np.testing.assert_allclose(positive, [1, 1, 0.1, 0.1, 0.01, 0.01], rtol=1e-6)
    negative = _optax_scales([-1.0] * 6, patience=2)
    if negative != [1.0] * 6:
        pytest.skip(f"this optax handles negative values now: {negative}")
    ours = _run(PlateauController(factor=0.1, patience=2, min_delta=0.0), [-1.0] * 6)
    np.testing.assert_allclose(ours, positive, rtol=1e-6)
