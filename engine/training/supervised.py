"""Supervised training of a plan (every task but gan): the phases ``engine.training.fit`` runs.

``build_supervised(plan, network, dataset, device, variables)`` puts the data
on the device, builds the loss, augmentation and metrics the plan names, and
returns the ``engine.training.fit.Trainer``: one ``SupervisedPhase`` per freeze stage and
the initial ``TrainState``.  A
phase builds its stage's optimizer (``engine.optim.freeze``) and compiled epoch when
it begins, so a two_stage plan compiles twice and nothing else recompiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from advisor.contract.schemas import Plan
from engine.datasets.augment import make_augment
from engine.datasets.data import Dataset, class_counts, steps_for
from engine.nn.models import ConvBlock, DenseBlock, Network
from engine.optim.freeze import Stage, make_stage_optimizer, stages_for
from engine.optim.losses import build_loss
from engine.optim.optimizers import set_lr_scale
from engine.runtime import compiler
from engine.runtime.sharding import Placement, single
from engine.training.fit import Trainer
from engine.training.train import (
    PROBE_SIZE,
    StepConfig,
    TrainState,
    choose_loop,
    make_epoch_summary,
    make_evaluate,
    make_metrics,
    make_train_epoch,
    make_train_step,
    run_keys,
)


@dataclass(frozen=True)
class DeviceData:
    """The dataset's arrays on the training device, and the fixed probe batch."""

    x_train: jax.Array
    y_train: jax.Array
    x_val: jax.Array
    y_val: jax.Array
    probe: jax.Array
    class_counts: tuple[int, ...] | None = None  # training examples per class (binary, multiclass)

    @classmethod
    def put(cls, dataset: Dataset, device: jax.Device | Placement) -> DeviceData:
        """The arrays on ``device``, or replicated over a ``Placement``'s devices."""
        arrays = (
            dataset.x_train,
            dataset.y_train,
            dataset.x_val,
            dataset.y_val,
            dataset.x_train[:PROBE_SIZE],
        )
        counts = class_counts(dataset.y_train, dataset.n_classes)
        if isinstance(device, Placement):
            return cls(*device.put(arrays), class_counts=counts)
        return cls(*(jax.device_put(a, device) for a in arrays), class_counts=counts)


# Fresh buffers for a whole tree in one dispatch (the next epoch donates the state's own).
_copy_tree = compiler.jit(lambda tree: jax.tree.map(jnp.copy, tree))


class SupervisedPhase:
    """One freeze stage of supervised training."""

    def __init__(
        self,
        plan: Plan,
        network: Network,
        stage: Stage,
        data: DeviceData,
        loop: str,
        data_key: jax.Array,
        device: jax.Device,
        placement: Placement | None = None,
    ):
        self.plan, self.network, self.stage, self.data, self.device = (
            plan,
            network,
            stage,
            data,
            device,
        )
        self.placement = placement or single(device)
        self.epochs = stage.epochs
        self.loop, self.data_key = loop, data_key
        n_train, n_val = data.x_train.shape[0], data.x_val.shape[0]
        self.n_train = n_train
        self.steps_per_epoch = steps_for(n_train, plan.batch_size)[0]
        self.config = StepConfig(plan.task, plan.loss.name, plan.n_classes, stage.frozen_blocks)
        self.loss_fn = build_loss(plan.loss, plan.task, data.class_counts)
        self.metrics_fn = make_metrics(plan.metrics, plan.task)
        augs = plan.regularization.augmentation
        self.augment = make_augment(augs, plan.modality, tuple(plan.input_shape)) if augs else None
        self.evaluate = make_evaluate(network, self.loss_fn, self.config, self.metrics_fn, n_val)
        self.train_epoch = None

    def begin(self, state: TrainState) -> TrainState:
        tx = make_stage_optimizer(self.plan, self.stage, self.steps_per_epoch, state.params)
        step = make_train_step(self.network, self.loss_fn, tx, self.config, self.augment)
        summary = make_epoch_summary(
            self.network, self.config, self.metrics_fn, self.plan.model.activation, self.n_train
        )
        self.train_epoch = make_train_epoch(
            step,
            summary,
            self.loop,
            self.n_train,
            self.plan.batch_size,
            self.data_key,
            placement=self.placement if self.placement.mesh is not None else None,
        )
        # committed to the device like the state's other arrays, or the second epoch recompiles
        return state.replace(opt_state=self.placement.put(tx.init(state.params)))

    def run_epoch(self, state: TrainState, epoch: int) -> tuple[TrainState, dict]:
        d = self.data
        state, summary = self.train_epoch(
            state, d.x_train, d.y_train, d.probe, jnp.asarray(epoch, jnp.int32)
        )
        values = {**summary, **self.evaluate(state.variables(), d.x_val, d.y_val)}
        return state, self.placement.local(values)

    def snapshot(self, state: TrainState):
        return _copy_tree((state.params, state.batch_stats))

    def restore(self, state: TrainState, snapshot) -> TrainState:
        params, batch_stats = snapshot
        return state.replace(params=params, batch_stats=batch_stats)

    def scale_lr(self, state: TrainState, scale: float) -> TrainState:
        return state.replace(opt_state=self.placement.put(set_lr_scale(state.opt_state, scale)))


def has_conv(network: Network) -> bool:
    """Whether XLA differentiates some of the network's convolutions itself (``choose_loop``).

    Dense blocks and the stride-1 conv blocks run on ``engine.nn.layers``' CPU
    kernels; residual blocks (strided convolutions and projections) do not.
    """
    return not all(isinstance(block, (DenseBlock, ConvBlock)) for block in network.base.blocks)


def build_supervised(
    plan: Plan,
    network: Network,
    dataset: Dataset,
    device: jax.Device,
    variables: dict,
    loop: str | None = None,
    placement: Placement | None = None,
) -> Trainer:
    """The ``Trainer`` of a supervised plan: one phase per freeze stage, the initial state.

    Args:
        variables: initial (or transferred) parameters and batch statistics.
        loop: force "scan" or "step"; None chooses by backend and model (``choose_loop``).
        placement: the devices to shard each batch over (``engine.runtime.sharding``); None = ``device``.
    """
    placement = placement or single(device)
    data_key, state = initial_state(plan, variables, placement)
    data = DeviceData.put(dataset, placement)
    loop = loop or choose_loop(device.platform, has_conv(network))
    phases = tuple(
        SupervisedPhase(plan, network, stage, data, loop, data_key, device, placement)
        for stage in stages_for(plan, network.n_blocks)
    )
    return Trainer(
        phases,
        state,
        lambda s: placement.local(s.variables()),
        n_train=dataset.n_train,
        placement=placement,
    )


def initial_state(plan: Plan, variables: dict, placement: Placement):
    """The data-order key and the placed initial ``TrainState``, drawn from the plan's seed.

    The in-memory, streamed and feature-cache paths start here, a population's
    trials from the same ``TrainState.start`` and ``run_keys`` (so each matches
    its lone run), a GAN from ``TrainState.start`` with keys drawn beside its
    players' (``engine.training.gan.build_gan``).
    """
    data_key, train_key = run_keys(plan.seed)
    return data_key, placement.put(TrainState.start(placement.put(variables), train_key))
