"""Transfer-learning strategies as optax label trees (freezing is a label, not a copy of the tree).

A *stage* says which parameter groups train and at what rate: every leaf gets
a label, ``"freeze"`` (its update is ``optax.set_to_zero``, exactly zero) or
the name of a trained group, and ``optax.partition`` gives each group its own
optimizer.  The lowest ``frozen_blocks`` base blocks also run in inference mode
(BatchNorm on its running statistics), as a frozen base must (Keras' transfer
guide).  ``stages_for(plan, n_blocks)`` turns ``Plan.freeze`` into the stages:

* from_scratch, full_fine_tune: one stage, everything trains;
* partial_fine_tune: the top ``trainable_blocks`` base blocks and the head train;
* freeze_base, feature_extractor: only the head trains (feature_extractor trains
  it on features the frozen base computed once, ``engine.pretrained.features``);
* two_stage (fastai's ``fine_tune``): ``head_epochs`` as freeze_base at the
  plan's rate (as partial_fine_tune when ``trainable_blocks`` is set), then
  everything at ``learning_rate * fine_tune_lr_factor``, each block below the
  head at ``layer_lr_decay`` times the rate of the one above.

A frozen block costs only its forward pass: the training step differentiates
the trainable part of the tree alone (``split_frozen``), so no gradient flows
into the frozen blocks and XLA builds no backward pass for them; their
gradients, zero by definition, reach the optimizer as zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import optax

from advisor.contract.errors import InputError
from advisor.contract.schemas import Plan
from engine.optim.optimizers import build_optimizer, current_learning_rate
from engine.optim.schedules import build_schedule

FROZEN = "freeze"
HEAD = "head"


@dataclass(frozen=True)
class Stage:
    """One training stage: its epochs, the rate factor of each trained group, the frozen blocks."""

    epochs: int
    frozen_blocks: int  # the lowest base blocks that do not train (and run BN in inference mode)
    group_rates: tuple[tuple[str, float], ...]  # trained group -> multiplier of the stage's rate
    rate_factor: float = 1.0  # the stage's rate relative to plan.optimizer.learning_rate
    schedule: bool = True  # False: a constant rate (two_stage's head stage)


def block_group(index: int) -> str:
    """The label of base block ``index`` when blocks train at their own rates."""
    return f"block_{index:03d}"


def _needs(plan: Plan, field: str):
    value = getattr(plan.freeze, field)
    if value is None:
        raise InputError(f"freeze.{field}: required for strategy {plan.freeze.strategy!r}")
    return value


def _trainable(n_blocks: int, trainable: int) -> int:
    """``trainable`` top blocks, checked against the base's depth."""
    if trainable > n_blocks:
        raise InputError(
            f"freeze.trainable_blocks: {trainable} is more than the {n_blocks} blocks of the base; "
            f"expected 0..{n_blocks}"
        )
    return trainable


def stages_for(plan: Plan, n_blocks: int) -> list[Stage]:
    """The stages a plan's freeze strategy trains in."""
    strategy, epochs = plan.freeze.strategy, plan.epochs
    everything = ((HEAD, 1.0),)
    if strategy in ("from_scratch", "full_fine_tune"):
        return [Stage(epochs, 0, everything)]
    if strategy in ("freeze_base", "feature_extractor"):
        return [Stage(epochs, n_blocks, everything)]
    if strategy == "partial_fine_tune":
        return [
            Stage(
                epochs,
                n_blocks - _trainable(n_blocks, _needs(plan, "trainable_blocks")),
                everything,
            )
        ]
    if strategy == "two_stage":
        head_epochs = _needs(plan, "head_epochs")
        factor, decay = _needs(plan, "fine_tune_lr_factor"), plan.freeze.layer_lr_decay or 1.0
        if head_epochs >= epochs:
            raise InputError(
                f"freeze.head_epochs: {head_epochs} leaves no fine-tuning epoch of the {epochs}; "
                f"expected fewer than {epochs}"
            )
        groups = [(HEAD, 1.0)] + [
            (block_group(i), decay ** (n_blocks - i)) for i in range(n_blocks)
        ]
        # trainable_blocks set: the first stage is partial fine-tuning rather than the head alone
        first_frozen = n_blocks - _trainable(n_blocks, plan.freeze.trainable_blocks or 0)
        return [
            Stage(head_epochs, first_frozen, everything, schedule=False),
            Stage(epochs - head_epochs, 0, tuple(groups), rate_factor=factor),
        ]
    raise InputError(f"freeze.strategy: {strategy!r} is not a strategy")


def block_index(name: str) -> int:
    """The position of a base block from its Flax name (``blocks_3`` -> 3)."""
    return int(name.removeprefix("blocks_"))


def param_labels(params: dict, stage: Stage) -> dict:
    """The label of every parameter leaf in this stage."""
    per_block = len(stage.group_rates) > 1

    def label(path, _leaf) -> str:
        keys = [getattr(k, "key", str(k)) for k in path]
        if keys[0] != "base":
            return HEAD
        index = block_index(keys[1])
        if index < stage.frozen_blocks:
            return FROZEN
        return block_group(index) if per_block else HEAD

    return jax.tree_util.tree_map_with_path(label, params)


def split_frozen(params: dict, frozen_blocks: int) -> tuple[dict, dict]:
    """(trainable, frozen): the lowest ``frozen_blocks`` base blocks apart from the rest.

    ``frozen`` holds the base's ``blocks_i`` subtrees; ``merge_frozen`` joins the two again.
    """
    if not frozen_blocks:
        return params, {}
    base = params["base"]
    frozen = {name: sub for name, sub in base.items() if block_index(name) < frozen_blocks}
    trainable = {name: sub for name, sub in base.items() if name not in frozen}
    return {**params, "base": trainable}, frozen


def merge_frozen(trainable: dict, frozen: dict) -> dict:
    """The whole parameter tree again from ``split_frozen``'s two parts."""
    if not frozen:
        return trainable
    return {**trainable, "base": {**trainable["base"], **frozen}}


def make_stage_optimizer(
    plan: Plan, stage: Stage, steps_per_epoch: int, params: dict, per_trial: tuple[str, ...] = ()
) -> optax.GradientTransformation:
    """The stage's optimizer: ``optax.partition`` over the label tree, frozen leaves set to zero.

    ``per_trial``: optimizer fields injected as arrays (``build_optimizer``).
    """
    base_lr = plan.optimizer.learning_rate * stage.rate_factor
    if stage.schedule:
        schedule = build_schedule(plan.schedule, base_lr, steps_per_epoch, stage.epochs)
    else:
        schedule = optax.constant_schedule(base_lr)
    transforms = {FROZEN: optax.set_to_zero()}
    for group, multiplier in stage.group_rates:
        transforms[group] = build_optimizer(
            plan.optimizer, _scaled(schedule, multiplier), per_trial
        )
    labels = param_labels(params, stage)
    used = set(jax.tree.leaves(labels))
    return optax.partition({k: v for k, v in transforms.items() if k in used}, labels)


def _scaled(schedule, multiplier: float):
    if multiplier == 1.0:
        return schedule
    return lambda step: schedule(step) * multiplier


def reported_learning_rate(opt_state) -> jax.Array:
    """The head's current rate (the peak of discriminative rates), for the ``lr`` series."""
    inner = getattr(opt_state, "inner_states", None)
    if isinstance(inner, dict) and HEAD in inner:
        return current_learning_rate(inner[HEAD])
    return current_learning_rate(opt_state)
