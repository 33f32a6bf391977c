"""Loss, metric and optimizer edge cases (issue 16), against numpy references.

Smooth L1 at beta = 0 is L1 (PyTorch's ``SmoothL1Loss`` defines it so), not
0/0; Huber at delta = 0 is identically zero, so the plan refuses it; RMSprop
honours ``nesterov``; a metric of NaN predictions is NaN; detection targets
with a negative class id are refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from advisor.contract.errors import InputError
from advisor.contract.loading import load_plan

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(16)


def test_smooth_l1_with_beta_0_is_the_l1_loss():
    from engine.optim.losses import make_smooth_l1

    outputs = RNG.normal(size=(6, 4)).astype(np.float32)
    targets = RNG.normal(size=(6, 4)).astype(np.float32)
    got = np.asarray(make_smooth_l1(0.0)(outputs, targets))
    expected = np.abs(outputs - targets).mean(axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert np.all(np.isfinite(got))


def test_smooth_l1_tends_to_l1_as_beta_shrinks():
    from engine.optim.losses import make_smooth_l1

    outputs = RNG.normal(size=(5, 4)).astype(np.float32)
    targets = RNG.normal(size=(5, 4)).astype(np.float32)
    limit = np.asarray(make_smooth_l1(0.0)(outputs, targets))
    near = np.asarray(make_smooth_l1(1e-4)(outputs, targets))
    np.testing.assert_allclose(near, limit, atol=1e-4)


def test_smooth_l1_matches_its_definition_for_positive_beta():
    from engine.optim.losses import make_smooth_l1

    beta = 0.5
    outputs = RNG.normal(size=(5, 4)).astype(np.float32)
    targets = RNG.normal(size=(5, 4)).astype(np.float32)
    x = np.abs(outputs - targets)
    expected = np.where(x < beta, 0.5 * x**2 / beta, x - 0.5 * beta).mean(axis=1)
    np.testing.assert_allclose(
        np.asarray(make_smooth_l1(beta)(outputs, targets)), expected, rtol=1e-5
    )


def _plan_with(**changes) -> dict:
    plan = json.loads((ROOT / "examples/plans/iris_tiny.json").read_text())
    for path, value in changes.items():
        node = plan
        *parents, leaf = path.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return plan


def test_huber_with_delta_0_is_refused_by_the_plan():
    plan = _plan_with(loss={"name": "huber", "params": {"delta": 0.0}, "terms": []})
    with pytest.raises(
        InputError,
        match=r"^plan: loss\.params\.delta: 0 is out of range; expected a value in \(0, inf\)",
    ):
        load_plan(plan)


def test_huber_with_delta_0_is_refused_by_the_loss_itself():
    from engine.optim.losses import make_huber

    with pytest.raises(InputError, match="loss.params.delta"):
        make_huber(0.0)


def test_negative_smooth_l1_beta_and_label_smoothing_of_1_are_refused():
    with pytest.raises(InputError, match=r"params\.beta: -1 is out of range"):
        load_plan(_plan_with(loss={"name": "smooth_l1", "params": {"beta": -1.0}, "terms": []}))
    with pytest.raises(InputError, match=r"params\.label_smoothing: 1 is out of range"):
        load_plan(_plan_with(loss__params={"label_smoothing": 1.0}))


def _rmsprop_reference(
    grads: list[np.ndarray], lr: float, momentum: float, nesterov: bool
) -> np.ndarray:
    """optax.rmsprop's update rule written out: nu = 0.9 nu + 0.1 g^2; u = g / sqrt(nu + 1e-8);
    t = u + momentum t; step = -(u + momentum t) with Nesterov, else -t; times lr."""
    nu = np.zeros_like(grads[0])
    trace = np.zeros_like(grads[0])
    params = np.zeros_like(grads[0])
    for g in grads:
        nu = 0.9 * nu + 0.1 * g**2
        u = g / np.sqrt(nu + 1e-8)
        trace = u + momentum * trace
        step = u + momentum * trace if nesterov else trace
        params = params - lr * step
    return params


@pytest.mark.parametrize("nesterov", [False, True])
def test_rmsprop_follows_its_reference_with_and_without_nesterov(nesterov):
    import jax.numpy as jnp
    import optax

    from advisor.contract.schemas import OptimizerPlan
    from engine.optim.optimizers import OPTIMIZERS

    opt_plan = OptimizerPlan(name="rmsprop", learning_rate=0.01, momentum=0.9, nesterov=nesterov)
    tx = OPTIMIZERS.get("rmsprop")(opt_plan, 0.01)
    grads = [RNG.normal(size=3).astype(np.float32) for _ in range(4)]
    params = jnp.zeros(3)
    state = tx.init(params)
    for g in grads:
        updates, state = tx.update(jnp.asarray(g), state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(
        np.asarray(params), _rmsprop_reference(grads, 0.01, 0.9, nesterov), rtol=1e-5
    )


def test_rmsprop_nesterov_without_momentum_is_refused():
    from advisor.contract.schemas import OptimizerPlan
    from engine.optim.optimizers import OPTIMIZERS

    with pytest.raises(InputError, match="optimizer.nesterov"):
        OPTIMIZERS.get("rmsprop")(
            OptimizerPlan(name="rmsprop", learning_rate=0.01, nesterov=True), 0.01
        )


@pytest.mark.parametrize(
    ("name", "task"),
    [
        ("accuracy", "multiclass"),
        ("f1", "multiclass"),
        ("auc", "binary"),
        ("accuracy", "binary"),
        ("mae", "regression"),
        ("r2", "regression"),
    ],
)
def test_a_metric_of_nan_predictions_is_nan(name, task):
    from engine.optim.metrics import metric_fn

    n = 8
    if task == "multiclass":
        outputs, targets = RNG.normal(size=(n, 3)), RNG.integers(0, 3, n)
    elif task == "binary":
        outputs, targets = RNG.normal(size=(n, 1)), np.arange(n) % 2
    else:
        outputs, targets = RNG.normal(size=(n, 1)), RNG.normal(size=(n, 1))
    fn = metric_fn(name, task)
    assert np.isfinite(float(fn(outputs.astype(np.float32), targets)))
    outputs = outputs.astype(np.float32)
    outputs[3, 0] = np.nan
    assert np.isnan(float(fn(outputs, targets)))


def test_accuracy_without_nan_still_matches_numpy():
    from engine.optim.metrics import metric_fn

    outputs = RNG.normal(size=(20, 4)).astype(np.float32)
    targets = RNG.integers(0, 4, 20)
    got = float(metric_fn("accuracy", "multiclass")(outputs, targets))
    assert got == pytest.approx(float(np.mean(outputs.argmax(axis=1) == targets)))


def _detection_plan():
    return load_plan(ROOT / "examples/plans/shapes_detection.json")


@pytest.mark.parametrize("label", [-1.0, 0.5, np.nan])
def test_detection_targets_with_a_negative_fractional_or_missing_class_are_refused(label):
    from engine.datasets.data import check_targets

    plan = _detection_plan()
    y = np.array([[0.1, 0.1, 0.5, 0.5, 0.0], [0.2, 0.2, 0.6, 0.6, label]], np.float32)
    with pytest.raises(InputError, match="detection class ids must be whole numbers"):
        check_targets(y, plan)


def test_detection_targets_with_valid_class_ids_pass():
    from engine.datasets.data import check_targets

    plan = _detection_plan()
    y = np.array([[0.1, 0.1, 0.5, 0.5, 0.0], [0.2, 0.2, 0.6, 0.6, plan.n_classes - 1]], np.float32)
    np.testing.assert_array_equal(check_targets(y, plan), y)
