"""Optimizers by name, driven by one table (optax style): each one must learn.

Not under the strict_jax fixture: optax's own adam bias correction mixes a Python
float with an int32 count, which strict dtype promotion rejects.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advisor.contract.errors import InputError
from advisor.contract.schemas import OptimizerPlan
from engine.optim.optimizers import (
    OPTIMIZERS,
    build_optimizer,
    current_learning_rate,
    set_lr_scale,
)

# name, plan fields (a rate each optimizer is known to work at on these small problems)
_OPTIMIZERS_UNDER_TEST = [
    ("gd", {"learning_rate": 0.1}),
    ("sgd", {"learning_rate": 0.05, "momentum": 0.9}),
    ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    ("adagrad", {"learning_rate": 0.5}),
    ("rmsprop", {"learning_rate": 0.02}),
    ("rmsprop", {"learning_rate": 0.01, "momentum": 0.5}),
    ("adadelta", {"learning_rate": 5.0}),
    ("adam", {"learning_rate": 0.05}),
    ("adam", {"learning_rate": 0.05, "b1": 0.5, "b2": 0.99}),
    ("adamw", {"learning_rate": 0.05, "weight_decay": 1e-4}),
    ("sgd", {"learning_rate": 0.1, "weight_decay": 1e-4, "clip_norm": 1.0}),
]
_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(_OPTIMIZERS_UNDER_TEST)]


def _train(opt_plan, loss_fn, params, n_steps):
    tx = build_optimizer(opt_plan, opt_plan.learning_rate)
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        grads = jax.grad(loss_fn)(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(n_steps):
        params, state = step(params, state)
    return params


def test_every_optimizer_is_under_test():
    assert set(OPTIMIZERS.names()) == {name for name, _ in _OPTIMIZERS_UNDER_TEST}


@pytest.mark.parametrize("name, fields", _OPTIMIZERS_UNDER_TEST, ids=_IDS)
def test_optimizer_minimises_a_quadratic(name, fields):
    target = jnp.asarray([[1.0, -2.0], [0.5, 3.0]], jnp.float32)

    def loss_fn(params):
        return jnp.sum((params["w"] - target) ** 2) + jnp.sum((params["b"] + 1.0) ** 2)

    params = {"w": jnp.zeros((2, 2), jnp.float32), "b": jnp.zeros(2, jnp.float32)}
    trained = _train(OptimizerPlan(name=name, **fields), loss_fn, params, 300)
    assert loss_fn(trained) < 0.01 * loss_fn(params)


@pytest.mark.parametrize("name, fields", _OPTIMIZERS_UNDER_TEST, ids=_IDS)
def test_optimizer_fits_a_logistic_regression(name, fields):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x @ np.asarray([1.5, -2.0, 0.5]) + 0.3 > 0).astype(np.float32)

    def loss_fn(params):
        logits = x @ params["w"] + params["b"]
        return jnp.mean(optax.losses.sigmoid_binary_cross_entropy(logits, y))

    params = {"w": jnp.zeros(3, jnp.float32), "b": jnp.zeros((), jnp.float32)}
    trained = _train(OptimizerPlan(name=name, **fields), loss_fn, params, 200)
    accuracy = np.mean((x @ np.asarray(trained["w"]) + float(trained["b"]) > 0) == (y > 0.5))
    assert loss_fn(trained) < 0.5 * loss_fn(params) and accuracy > 0.9


def test_rate_is_readable_and_scalable_without_recompiling():
    plan = OptimizerPlan(name="sgd", learning_rate=0.1)
    tx = build_optimizer(plan, optax.linear_schedule(0.1, 0.0, transition_steps=10))
    params = {"w": jnp.ones(3, jnp.float32)}
    state = tx.init(params)
    traces = []

    @jax.jit
    def update(grads, state, params):
        traces.append(1)  # runs only while tracing
        return tx.update(grads, state, params)

    grads = {"w": jnp.ones(3, jnp.float32)}
    updates, state = update(grads, state, params)
    np.testing.assert_allclose(current_learning_rate(state), 0.1)  # the rate at step 0
    np.testing.assert_allclose(updates["w"], -0.1)
    updates, state = update(grads, state, params)
    np.testing.assert_allclose(current_learning_rate(state), 0.09, rtol=1e-6)
    state = set_lr_scale(state, 0.5)
    updates, state = update(grads, state, params)
    np.testing.assert_allclose(updates["w"], -0.08 * 0.5, rtol=1e-6)
    np.testing.assert_allclose(current_learning_rate(state), 0.04, rtol=1e-6)
    assert len(traces) == 1


def test_rate_is_found_inside_a_partitioned_optimizer():
    # The engine freezes layers with optax.partition; the helpers must still find the rate.
    inner = build_optimizer(OptimizerPlan(name="adam", learning_rate=0.01), 0.01)
    tx = optax.partition(
        {"train": inner, "freeze": optax.set_to_zero()}, {"a": "train", "b": "freeze"}
    )
    params = {"a": jnp.ones(2, jnp.float32), "b": jnp.ones(2, jnp.float32)}
    state = set_lr_scale(tx.init(params), 0.25)
    np.testing.assert_allclose(current_learning_rate(state), 0.0025)
    updates, _ = tx.update({"a": jnp.ones(2), "b": jnp.ones(2)}, state, params)
    assert np.all(np.asarray(updates["b"]) == 0.0)


def test_clip_norm_bounds_the_step():
    plan = OptimizerPlan(name="sgd", learning_rate=1.0, clip_norm=0.5)
    tx = build_optimizer(plan, 1.0)
    params = {"w": jnp.zeros(4, jnp.float32)}
    updates, _ = tx.update({"w": jnp.full(4, 100.0)}, tx.init(params), params)
    np.testing.assert_allclose(np.linalg.norm(updates["w"]), 0.5, rtol=1e-5)


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_weight_decay_shrinks_kernels_not_biases(name):
    plan = OptimizerPlan(name=name, learning_rate=0.1, weight_decay=0.01)
    tx = build_optimizer(plan, 0.1)
    params = {"kernel": jnp.full((2, 2), 2.0), "bias": jnp.full(2, 2.0)}
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zero, tx.init(params), params)
    # zero gradient: only the decay moves the kernel, by -lr * wd * w = -0.002 for both forms
    np.testing.assert_allclose(updates["kernel"], -0.002, rtol=1e-5)
    np.testing.assert_allclose(updates["bias"], 0.0)


def test_adamw_decay_is_decoupled_from_the_gradient_scale():
    # Adam normalises the gradient, so an L2 term would shrink with it; adamw's does not.
    plan = OptimizerPlan(name="adamw", learning_rate=0.1, weight_decay=0.5)
    tx = build_optimizer(plan, 0.1)
    params = {"kernel": jnp.full((2, 2), 1.0)}
    grads = {"kernel": jnp.full((2, 2), 1e3)}
    updates, _ = tx.update(grads, tx.init(params), params)
    # adam's normalised step is -lr * 1 ; plus decoupled decay -lr * wd * w = -0.05
    np.testing.assert_allclose(updates["kernel"], -0.1 - 0.05, rtol=1e-4)


def test_nesterov_without_momentum_is_an_input_error():
    plan = OptimizerPlan(name="sgd", learning_rate=0.1, nesterov=True)
    with pytest.raises(
        InputError, match="^optimizer.nesterov: Nesterov momentum needs optimizer.momentum"
    ):
        build_optimizer(plan, 0.1)


def test_adam_betas_come_from_the_plan():
    # After one step Adam's first moment is (1 - b1) * g: b1 = 0.5 leaves half the gradient.
    params = {"w": jnp.zeros(2, jnp.float32)}
    grads = {"w": jnp.full(2, 2.0)}
    for name in ("adam", "adamw"):
        tx = build_optimizer(OptimizerPlan(name=name, learning_rate=0.1, b1=0.5), 0.1)
        _, state = tx.update(grads, tx.init(params), params)
        first_moment = optax.tree_utils.tree_get(state, "mu")["w"]
        np.testing.assert_allclose(first_moment, 1.0, err_msg=name)
