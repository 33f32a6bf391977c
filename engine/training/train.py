"""The compiled training step, the epoch (scanned or stepped), evaluation and diagnostics.

Pure functions at the jit boundary.  ``make_train_step`` builds
``train_step(state, batch) -> (state, metrics)``; its metrics are the cheap
per-step diagnostics a diagnosis reads: loss, global gradient norm, gradient
norms of the first and last layer groups, update-to-weight ratio.
``make_train_epoch`` runs one epoch either as a single ``lax.scan`` over the
device-resident batches (state donated) or, where XLA runs a native
convolution backward badly inside a loop (CPU, jax-ml/jax#12868), as a jitted
step per batch; ``choose_loop`` picks the form (the measurements are in its
docstring).
Both forms end in the same jitted epoch summary (means over the epoch, train
metrics on the epoch's outputs, the learning rate, the dead-unit fraction on a
fixed probe batch), so they give the same history.  ``make_evaluate`` runs the
full validation set in fixed-size chunks.  The host loop (early stopping,
plateau, NaN) is ``engine.training.fit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from engine.datasets.data import encode_targets, epoch_batches, steps_for
from engine.nn.models import DEAD_UNIT_ACTIVATIONS
from engine.optim.freeze import block_index, merge_frozen, reported_learning_rate, split_frozen
from engine.runtime import compiler

# Guards the update-to-weight ratio of an all-zero parameter tree.
_TINY = 1e-12
# Examples in the dead-unit probe batch: enough to see every unit fire once.
PROBE_SIZE = 256
# Validation examples per compiled forward call.
EVAL_CHUNK = 512


class TrainState(struct.PyTreeNode):
    """Everything that changes during training; all arrays, so it can be donated."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    key: jax.Array

    @classmethod
    def start(
        cls, variables: dict, key: jax.Array, tx: optax.GradientTransformation | None = None
    ) -> TrainState:
        """The one place a training state is made (supervised, streamed, feature cache, GAN, trials).

        Step 0, the variables, the step key; the optimizer state is ``tx``'s, or
        None until a phase's ``begin`` builds its stage's optimizer.  Pure, so a
        population builds it inside a compiled call.
        """
        params = variables["params"]
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=variables.get("batch_stats", {}),
            opt_state=None if tx is None else tx.init(params),
            key=key,
        )

    def variables(self) -> dict:
        """The model variables for ``Network.apply``."""
        return (
            {"params": self.params, "batch_stats": self.batch_stats}
            if self.batch_stats
            else {"params": self.params}
        )


def run_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """(data-order key, step key) of a run from its plan's seed (the weights use fold 0).

    A run, its streamed twin and each trial of a population draw the same two
    keys, so they shuffle alike and give the same curve.
    """
    data_key, train_key = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 1))
    return data_key, train_key


@struct.dataclass
class StepConfig:
    """What the step needs to know about the task (all static)."""

    task: str = struct.field(pytree_node=False)
    loss_name: str = struct.field(pytree_node=False)
    n_classes: int | None = struct.field(pytree_node=False)
    frozen_blocks: int = struct.field(pytree_node=False, default=0)


def layer_groups(params: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Paths of the first (closest to the input) and last (output) layer groups of ``params``.

    Given the trainable tree of a step, the first group is the lowest block that
    trains: a frozen block's gradient is zero by construction and says nothing of vanishing.
    """
    base = params.get("base", {})
    if base:
        first = ("base", min(base, key=block_index))
    else:
        first = ("head", sorted(params["head"])[0])
    return first, ("head", "output")


def _subtree(tree: dict, path: tuple[str, ...]):
    for part in path:
        tree = tree[part]
    return tree


def _sum_squares(tree) -> jax.Array:
    return sum(
        (jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree)), jnp.zeros((), jnp.float32)
    )


def gradient_diagnostics(grads: dict, updates: dict, params: dict) -> dict:
    """Global gradient norm, the first and last layer groups' norms, and |update| / |weights|.

    All three trees are the trainable parameters' (``engine.optim.freeze.split_frozen``).
    Each gradient leaf is squared and summed once; the three norms are sums of
    those partial sums (about 15% of an MLP step on CPU when computed apart).
    """
    first, last = layer_groups(grads)
    first_sq, last_sq = _sum_squares(_subtree(grads, first)), _sum_squares(_subtree(grads, last))
    rest_sq = _sum_squares(_without(grads, (first, last)))
    total_sq = first_sq + rest_sq + (last_sq if last != first else 0.0)  # a head alone: one group
    return {
        "grad_norm": jnp.sqrt(total_sq),
        "grad_norm_first": jnp.sqrt(first_sq),
        "grad_norm_last": jnp.sqrt(last_sq),
        "update_ratio": jnp.sqrt(_sum_squares(updates)) / (jnp.sqrt(_sum_squares(params)) + _TINY),
    }


def _without(tree: dict, paths: tuple[tuple[str, ...], ...]) -> dict:
    """``tree`` minus the subtrees at ``paths`` (two-level paths)."""
    out = {}
    for top, sub in tree.items():
        if isinstance(sub, dict):
            out[top] = {k: v for k, v in sub.items() if (top, k) not in paths}
        elif (top,) not in paths:
            out[top] = sub
    return out


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of ``values`` [B] over the examples where ``mask`` is 1."""
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def make_train_step(
    network: nn.Module,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
    tx: optax.GradientTransformation,
    config: StepConfig,
    augment: Callable | None = None,
) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """``train_step(state, batch) -> (state, metrics)`` for batches ``{"x", "y", "mask"}``.

    ``batch["y"]`` holds raw targets (``engine.datasets.data``); the step encodes them for
    the loss, augments inputs (and for mixup targets) with a key folded from the
    step, and averages the per-example loss over the unmasked examples.  The
    metrics carry the batch outputs, so the epoch summary can compute train metrics.
    """

    def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        key = jax.random.fold_in(state.key, state.step)
        aug_key, dropout_key = jax.random.split(key)
        targets = encode_targets(batch["y"], config.task, config.loss_name, config.n_classes)
        x = batch["x"]
        if augment is not None:
            x, targets = augment(aug_key, x, targets)

        # only the trainable part is differentiated: no backward pass through frozen blocks
        trainable, frozen = split_frozen(state.params, config.frozen_blocks)

        def objective(trainable):
            params = merge_frozen(trainable, frozen)
            variables = {"params": params, "batch_stats": state.batch_stats}
            outputs, updates = network.apply(
                variables,
                x,
                train=True,
                frozen_blocks=config.frozen_blocks,
                rngs={"dropout": dropout_key},
                mutable=["batch_stats"],
            )
            loss = masked_mean(loss_fn(outputs, targets), batch["mask"])
            return loss, (outputs, updates.get("batch_stats", state.batch_stats))

        (loss, (outputs, batch_stats)), grads = jax.value_and_grad(objective, has_aux=True)(
            trainable
        )
        # the stage's optimizer labels the whole tree: frozen leaves get zeros, which it ignores
        all_grads = merge_frozen(grads, jax.tree.map(jnp.zeros_like, frozen))
        updates, opt_state = tx.update(all_grads, state.opt_state, state.params)
        updates = split_frozen(updates, config.frozen_blocks)[0]
        params = merge_frozen(optax.apply_updates(trainable, updates), frozen)
        metrics = {
            "loss": loss,
            **gradient_diagnostics(grads, updates, trainable),
            "outputs": outputs,
        }
        new_state = state.replace(
            step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state
        )
        return new_state, metrics

    return train_step


def dead_fraction(
    network: nn.Module, variables: dict, probe: jax.Array, activation: str
) -> jax.Array:
    """Share of hidden units whose pre-activation is never positive on the probe batch.

    NaN for activations without a dead region (tanh, sigmoid).
    """
    if activation not in DEAD_UNIT_ACTIVATIONS:
        return jnp.asarray(jnp.nan, jnp.float32)
    _, state = network.apply(variables, probe, train=False, mutable=["intermediates"])
    dead = total = 0
    for z in jax.tree.leaves(
        state.get("intermediates", {})
    ):  # none: a head alone without hidden layers
        alive = jnp.max(z.reshape(-1, z.shape[-1]), axis=0) > 0  # a unit = one channel/feature
        dead = dead + jnp.sum(~alive)
        total = total + z.shape[-1]
    if total == 0:
        return jnp.asarray(jnp.nan, jnp.float32)
    return (dead / total).astype(jnp.float32)


def make_epoch_summary(
    network: nn.Module, config: StepConfig, metrics_fn: Callable, activation: str, n_train: int
) -> Callable:
    """``summary(state, step_metrics, y_train, order, probe) -> dict`` of per-epoch scalars.

    ``step_metrics`` are stacked over the epoch's steps; ``order`` is the epoch's
    index matrix (its first ``n_train`` entries are every example once).
    """

    def summary(
        state: TrainState,
        step_metrics: dict,
        y_train: jax.Array,
        order: jax.Array,
        probe: jax.Array,
    ) -> dict:
        outputs = step_metrics.pop("outputs")
        outputs = outputs.reshape(-1, *outputs.shape[2:])[:n_train]
        targets = y_train[order.reshape(-1)[:n_train]]
        steps, size = order.shape
        # each step's mean weighted by its real examples, so the epoch loss is the per-example mean
        counts = jnp.minimum(size, n_train - size * jnp.arange(steps)).astype(jnp.float32)
        out = {"loss": jnp.sum(step_metrics.pop("loss") * counts) / n_train}
        out.update({name: jnp.mean(values) for name, values in step_metrics.items()})
        out.update(metrics_fn(outputs, targets))
        out["lr"] = reported_learning_rate(state.opt_state).astype(jnp.float32)
        out["dead_fraction"] = dead_fraction(network, state.variables(), probe, activation)
        return out

    return summary


def choose_loop(platform: str, has_conv: bool) -> str:
    """ "scan" (one compiled epoch) or "step" (one compiled call per batch).

    ``has_conv``: the model holds convolutions whose backward pass XLA computes
    itself (the strided ones of a ResNet; stride-1 convolutions run on
    ``engine.nn.layers``' CPU kernels, whose backward is a matmul).  XLA:CPU runs a
    native convolution backward inside ``lax.scan`` several times slower
    (jax-ml/jax#12868; figures in benchmarks/RESULTS.md, "Engine throughput"), so
    such models take one jitted call per batch on CPU.  The MLP and the CNN of
    stride-1 blocks run at least as fast scanned (no per-batch dispatch); on
    GPU/TPU the scanned epoch wins for every model.
    """
    return "step" if platform == "cpu" and has_conv else "scan"


def make_train_epoch(
    train_step: Callable,
    summary: Callable,
    loop: str,
    n_train: int,
    batch_size: int,
    data_key: jax.Array,
    outputs_axis: int = 0,
    placement=None,
) -> Callable:
    """``train_epoch(state, x_train, y_train, probe, epoch) -> (state, summary)``.

    loop "scan": the whole epoch is one jitted ``lax.scan`` (state donated).
    loop "step": the batch order and the summary are jitted once each, and each
    batch is one jitted call that gathers its examples on the device.

    When the batch size does not divide the training set, the last batch runs at
    its own size after the full ones (a padded, masked batch would cost a whole
    step, 6 % of the small CNN's epoch, and would put the padding in batch-norm
    statistics).  ``outputs_axis`` is the example axis of a step's ``outputs``
    (1 when the step is vmapped over trials); the last batch's outputs are padded
    back to full size there, so the summary sees ``[steps, batch, ...]`` as before.
    ``placement`` (``engine.runtime.sharding``): each gathered batch is split over its
    ``data`` mesh axis and the state kept replicated; None = one device.
    """
    steps, size = steps_for(n_train, batch_size)
    last = n_train - (steps - 1) * size  # examples in the final batch
    full = steps if last == size else steps - 1

    def gather_step(state, x, y, index, mask):
        batch = {"x": x[index], "y": y[index], "mask": mask}
        if placement is None:
            return train_step(state, batch)
        state, metrics = train_step(state, placement.constrain_batch(batch))
        return placement.constrain_state(state), metrics

    def gather_step_at(state, x, y, order, mask, i):
        return gather_step(state, x, y, order[i], mask[i])

    def last_step(state, x, y, order, mask):
        state, metrics = gather_step(state, x, y, order[-1, :last], mask[-1, :last])
        outputs = metrics["outputs"]
        pad = [(0, 0)] * outputs.ndim
        pad[outputs_axis] = (0, size - last)
        return state, {**metrics, "outputs": jnp.pad(outputs, pad)}

    def append(stacked: dict, final: dict) -> dict:
        return jax.tree.map(lambda a, b: jnp.concatenate([a, b[None]]), stacked, final)

    summary_jit = compiler.jit(summary)
    order_jit = compiler.jit(lambda epoch: epoch_batches(data_key, epoch, n_train, batch_size))

    if loop == "scan":

        def epoch_fn(state, x, y, probe, epoch):
            order, mask = epoch_batches(data_key, epoch, n_train, batch_size)
            state, step_metrics = jax.lax.scan(
                lambda s, batch: gather_step(s, x, y, *batch), state, (order[:full], mask[:full])
            )
            if full < steps:
                state, final = last_step(state, x, y, order, mask)
                step_metrics = append(step_metrics, final)
            return state, summary(state, step_metrics, y, order, probe)

        return compiler.jit(epoch_fn, donate_argnums=0)

    step_jit = compiler.jit(gather_step_at, donate_argnums=0)
    last_jit = compiler.jit(last_step, donate_argnums=0)

    def stepped_epoch(state, x, y, probe, epoch):
        order, mask = order_jit(jnp.asarray(epoch, jnp.int32))
        collected = []
        for i in range(full):
            state, step_metrics = step_jit(state, x, y, order, mask, jnp.asarray(i, jnp.int32))
            collected.append(step_metrics)
        if full < steps:
            state, final = last_jit(state, x, y, order, mask)
            collected.append(final)
        stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *collected)
        return state, summary_jit(state, stacked, y, order, probe)

    return stepped_epoch


def make_pooled_metrics(metrics_fn: Callable, n: int) -> Callable:
    """``finish(outputs, losses, y)``: one jitted call joining a set's chunked outputs and
    masked per-example losses into its ``val_loss`` and ``val_<metric>`` values."""

    @compiler.jit
    def finish(outputs, losses, y):
        scores = metrics_fn(jnp.concatenate(outputs)[:n], y)
        out = {"val_loss": jnp.sum(jnp.concatenate(losses)) / n}
        out.update({f"val_{name}": value for name, value in scores.items()})
        return out

    return finish


def make_evaluate(
    network: nn.Module, loss_fn: Callable, config: StepConfig, metrics_fn: Callable, n: int
) -> Callable:
    """``evaluate(variables, x, y) -> {"val_loss", "val_<metric>"...}`` over the whole set.

    The forward pass is one jitted function on fixed-size chunks (the last one
    padded and masked), so any set size compiles once; the gathering, masking
    and joining happen inside the two jitted calls, so a set of one chunk costs
    two dispatches (eager array ops here were most of a cached-feature epoch).
    """
    chunk = min(n, EVAL_CHUNK)

    @compiler.jit
    def forward(variables, x, y, start):
        position = start + jnp.arange(chunk)
        index = jnp.minimum(position, n - 1)  # the last chunk repeats the final example
        outputs = network.apply(variables, x[index], train=False, frozen_blocks=0)
        targets = encode_targets(y[index], config.task, config.loss_name, config.n_classes)
        return outputs, loss_fn(outputs, targets) * (position < n).astype(jnp.float32)

    finish = make_pooled_metrics(metrics_fn, n)

    def evaluate(variables: dict, x: jax.Array, y: jax.Array) -> dict:
        parts = [forward(variables, x, y, np.int32(start)) for start in range(0, n, chunk)]
        return finish([out for out, _ in parts], [loss for _, loss in parts], y)

    return evaluate


def make_metrics(names: list[str], task: str) -> Callable[[jax.Array, jax.Array], dict]:
    """``metrics(outputs, raw_targets) -> {name: scalar}`` for the plan's metric names.

    A metric with one value per label becomes one series per label, ``NAME_i``.
    """
    from engine.optim.metrics import metric_fn

    fns = {name: metric_fn(name, task) for name in names}

    def metrics(outputs: jax.Array, targets: jax.Array) -> dict:
        out = {}
        for name, fn in fns.items():
            value = fn(outputs, targets)
            if value.ndim:  # one value per label: label_auc -> label_auc_0, label_auc_1, ...
                out.update({f"{name}_{i}": value[i] for i in range(value.shape[0])})
            else:
                out[name] = value
        return out

    return metrics
