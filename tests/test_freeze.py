"""engine.optim.freeze: label trees, exact zeros for frozen leaves, stages and discriminative rates."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advisor.contract.errors import InputError
from advisor.contract.vocabulary import FREEZE_STRATEGIES
from engine.nn.models import build_model, init_variables
from engine.optim.freeze import (
    FROZEN,
    HEAD,
    Stage,
    block_group,
    make_stage_optimizer,
    param_labels,
    stages_for,
)
from engine.outputs.checkpoint import save_checkpoint
from tests.engine_plans import DIGITS_CNN, build_phases, make_plan

TRANSFER_FIELDS = {
    "from_scratch": {},
    "full_fine_tune": {},
    "partial_fine_tune": {"trainable_blocks": 1},
    "freeze_base": {},
    "feature_extractor": {},
    "two_stage": {"head_epochs": 1, "fine_tune_lr_factor": 0.1, "layer_lr_decay": 0.5},
}
# base blocks (of 2) that must not change in the first stage
FROZEN_BLOCKS = {
    "from_scratch": 0,
    "full_fine_tune": 0,
    "partial_fine_tune": 1,
    "freeze_base": 2,
    "feature_extractor": 2,
    "two_stage": 2,
}


def _params(plan):
    network = build_model(plan.model, plan.input_shape, plan.task)
    return network, init_variables(network, jax.random.PRNGKey(0), plan.input_shape)


def test_every_strategy_is_under_test():
    assert set(TRANSFER_FIELDS) == set(FREEZE_STRATEGIES)


def test_labels_and_exactly_zero_updates_for_frozen_leaves():
    plan = make_plan(
        DIGITS_CNN,
        freeze={"strategy": "partial_fine_tune", "trainable_blocks": 1},
        **{"optimizer.weight_decay": 0.1},
    )
    _, variables = _params(plan)
    params = variables["params"]
    stage = stages_for(plan, 2)[0]
    labels = param_labels(params, stage)
    assert set(jax.tree.leaves(labels["base"]["blocks_0"])) == {FROZEN}
    assert set(jax.tree.leaves(labels["base"]["blocks_1"])) == {HEAD}
    tx = make_stage_optimizer(plan, stage, 4, params)
    grads = jax.tree.map(lambda p: jnp.ones_like(p), params)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert all(bool(jnp.all(u == 0)) for u in jax.tree.leaves(updates["base"]["blocks_0"]))
    assert all(bool(jnp.any(u != 0)) for u in jax.tree.leaves(updates["base"]["blocks_1"]))


def test_discriminative_rates_of_the_fine_tuning_stage():
    plan = make_plan(
        DIGITS_CNN,
        epochs=3,
        freeze={"strategy": "two_stage", **TRANSFER_FIELDS["two_stage"]},
        optimizer={"name": "sgd", "learning_rate": 1.0},
    )
    _, variables = _params(plan)
    params = variables["params"]
    head_stage, tune_stage = stages_for(plan, 2)
    assert (
        head_stage.epochs,
        head_stage.frozen_blocks,
        tune_stage.epochs,
        tune_stage.frozen_blocks,
    ) == (1, 2, 2, 0)
    tx = make_stage_optimizer(plan, tune_stage, 4, params)
    ones = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(ones, tx.init(params), params)
    # plain SGD: update = -rate x gradient; head at 0.1, the blocks below at 0.05 and 0.025
    assert float(updates["head"]["output"]["bias"][0]) == pytest.approx(-0.1)
    assert float(updates["base"]["blocks_1"]["conv"]["bias"][0]) == pytest.approx(-0.05)
    assert float(updates["base"]["blocks_0"]["conv"]["bias"][0]) == pytest.approx(-0.025)
    assert param_labels(params, tune_stage)["base"]["blocks_0"]["conv"]["kernel"] == block_group(0)


# Two dense blocks with BatchNorm: the freeze rules in seconds rather than a conv net's compile time.
MLP_BN = {"model.hidden_layers": 2, "model.batch_norm": True}


def _states_after_each_phase(plan):
    """Train each phase of the plan for its epochs; the state after each."""
    trainer = build_phases(plan)
    state, states, epoch = trainer.state, [], 0
    for phase in trainer.phases:
        state = phase.begin(state)
        for _ in range(phase.epochs):
            epoch += 1
            state, _ = phase.run_epoch(state, epoch)
        states.append(jax.device_get(phase.snapshot(state)))
    return states


@pytest.mark.parametrize("strategy", FREEZE_STRATEGIES)
def test_frozen_parameters_and_statistics_do_not_change(strategy, tmp_path):
    # a base checkpoint of the same structure, as an earlier run would leave it
    base_plan = make_plan(**MLP_BN)
    _, base_vars = _params(base_plan)
    base_vars = jax.tree.map(lambda a: np.asarray(a) + 0.5, base_vars)  # unlike a fresh init
    save_checkpoint(tmp_path, base_vars, {"model": base_plan.model.model_dump()})
    base = None if strategy == "from_scratch" else str(tmp_path)
    plan = make_plan(
        epochs=2 if strategy == "two_stage" else 1,
        freeze={"strategy": strategy, **TRANSFER_FIELDS[strategy]},
        **{"model.base": base, **MLP_BN},
    )
    states = _states_after_each_phase(plan)
    params, stats = states[0]
    for i in range(2):
        block = f"blocks_{i}"
        same = jax.tree.all(
            jax.tree.map(np.array_equal, params["base"][block], base_vars["params"]["base"][block])
        )
        same_stats = jax.tree.all(
            jax.tree.map(
                np.array_equal, stats["base"][block], base_vars["batch_stats"]["base"][block]
            )
        )
        frozen = i < FROZEN_BLOCKS[strategy]
        assert same == frozen and same_stats == frozen, (block, strategy)
    assert not np.array_equal(
        params["head"]["output"]["kernel"], base_vars["params"]["head"]["output"]["kernel"]
    )
    if strategy == "two_stage":  # the second stage trains the base too
        tuned = states[1][0]
        assert not np.array_equal(
            tuned["base"]["blocks_0"]["dense"]["kernel"],
            base_vars["params"]["base"]["blocks_0"]["dense"]["kernel"],
        )


@pytest.mark.parametrize(
    ("freeze", "message"),
    [
        (
            {"strategy": "partial_fine_tune"},
            r"^freeze.trainable_blocks: required for strategy 'partial_fine_tune'$",
        ),
        (
            {"strategy": "partial_fine_tune", "trainable_blocks": 3},
            r"^freeze.trainable_blocks: 3 is more than the 2 blocks",
        ),
        (
            {"strategy": "two_stage", "head_epochs": 3, "fine_tune_lr_factor": 0.1},
            r"^freeze.head_epochs: 3 leaves no fine-tuning epoch of the 3",
        ),
    ],
)
def test_bad_freeze_fields_name_the_field(freeze, message):
    with pytest.raises(InputError, match=message):
        stages_for(make_plan(DIGITS_CNN, freeze=freeze), 2)


def test_stage_without_schedule_is_constant():
    plan = make_plan(schedule={"name": "cosine"}, epochs=4)
    _, variables = _params(plan)
    tx = make_stage_optimizer(
        plan, Stage(4, 0, ((HEAD, 1.0),), schedule=False), 4, variables["params"]
    )
    state = tx.init(variables["params"])
    assert isinstance(tx, optax.GradientTransformation) and state is not None


# ------------------------------------------------- no backward pass through frozen blocks


STEP_PLAN = make_plan(
    **MLP_BN,
    **{"model.head_units": [8], "model.dropout": 0.2, "optimizer.clip_norm": 0.5},
    # not adam: it would blow the rounding noise of a dense bias before BatchNorm
    # (whose true gradient is zero) up to full-size steps
    optimizer={"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.01},
)


@functools.cache
def _step_network():
    network, variables = _params(STEP_PLAN)
    return network, jax.tree.map(lambda a: a + 0.1, variables)  # BN statistics unlike their init


def _step_setup(frozen_blocks: int):
    """A two-block MLP with BatchNorm, a hidden head layer and dropout: step, state, a batch."""
    from engine.optim.losses import build_loss
    from engine.training.train import StepConfig, TrainState, make_train_step

    plan = STEP_PLAN
    network, variables = _step_network()
    stage = Stage(1, frozen_blocks, ((HEAD, 1.0),))
    tx = make_stage_optimizer(plan, stage, 4, variables["params"])
    config = StepConfig(plan.task, plan.loss.name, plan.n_classes, frozen_blocks)
    loss_fn = build_loss(plan.loss)
    step = make_train_step(network, loss_fn, tx, config)
    state = TrainState.start(variables, jax.random.PRNGKey(3), tx)
    x = jax.random.normal(jax.random.PRNGKey(4), (16, 4))
    batch = {"x": x, "y": jnp.arange(16) % 3, "mask": jnp.ones(16).at[-3:].set(0.0)}
    return network, loss_fn, tx, config, step, state, batch


def _whole_tree_step(network, loss_fn, tx, config, state, batch):
    """The step as it was: differentiate every leaf, let the optimizer zero the frozen ones."""
    from engine.datasets.data import encode_targets
    from engine.training.train import masked_mean

    _, dropout_key = jax.random.split(jax.random.fold_in(state.key, state.step))
    targets = encode_targets(batch["y"], config.task, config.loss_name, config.n_classes)

    def objective(params):
        outputs, _ = network.apply(
            {"params": params, "batch_stats": state.batch_stats},
            batch["x"],
            train=True,
            frozen_blocks=config.frozen_blocks,
            rngs={"dropout": dropout_key},
            mutable=["batch_stats"],
        )
        return masked_mean(loss_fn(outputs, targets), batch["mask"])

    grads = jax.grad(objective)(state.params)
    updates, _ = tx.update(grads, state.opt_state, state.params)
    return grads, optax.apply_updates(state.params, updates)


@pytest.mark.parametrize("frozen_blocks", [0, 1, 2])
def test_trainable_gradients_and_updates_are_those_of_the_whole_tree_step(frozen_blocks):
    from engine.optim.freeze import split_frozen

    network, loss_fn, tx, config, step, state, batch = _step_setup(frozen_blocks)
    both = jax.jit(lambda s, b: (_whole_tree_step(network, loss_fn, tx, config, s, b), step(s, b)))
    (grads, expected), (new, metrics) = both(state, batch)  # one compile for the two
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    trainable, frozen = split_frozen(grads, frozen_blocks)
    norm = float(jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(trainable))))
    assert float(metrics["grad_norm"]) == pytest.approx(norm, rel=1e-5)
    # the first group is the lowest block that trains, or the head's first layer when none does
    lowest = trainable["base"].get(f"blocks_{frozen_blocks}", trainable["head"]["dense_0"])
    first = float(jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(lowest))))
    assert float(metrics["grad_norm_first"]) == pytest.approx(first, rel=1e-5) and first > 0
    for name in frozen:  # frozen weights: exactly as they were
        before, after = state.params["base"][name], new.params["base"][name]
        assert jax.tree.all(jax.tree.map(np.array_equal, after, before))


def _count(jaxpr, primitive: str) -> int:
    """Occurrences of ``primitive`` in a jaxpr, sub-jaxprs (jit, custom_vjp, scan) included."""
    n = 0
    for eqn in jaxpr.eqns:
        n += eqn.primitive.name == primitive
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else [value]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    n += _count(inner, primitive)
    return n


def test_frozen_blocks_cost_only_their_forward_pass():
    # 4 dense layers (2 base blocks, the head's hidden layer, the output): 4 products forward;
    # backward, a weight gradient for each trained layer and an input gradient for each
    # trained layer above another trained one (or a trained block)
    products = {}
    for frozen_blocks in (0, 1, 2):
        _, _, _, _, step, state, batch = _step_setup(frozen_blocks)
        products[frozen_blocks] = _count(jax.make_jaxpr(step)(state, batch).jaxpr, "dot_general")
    assert products == {0: 4 + 4 + 3, 1: 4 + 3 + 2, 2: 4 + 2 + 1}
