"""Trials of one structure trained together: one ``jax.vmap``-ed, jit-compiled program.

A *population* is a list of trial plans that differ only in per-trial values
(``engine.searching.space.is_per_trial``): the learning rate, weight decay, momentum,
dropout rate and augmentation strengths.  Those values become arrays with one
entry per trial, so one compiled program trains every trial:

* the learning rate is the optimizer's injected ``lr_scale`` over a schedule
  built for a rate of 1 (every schedule is linear in its base rate);
* weight decay and momentum are injected into the opt state too
  (``build_optimizer(per_trial=...)``);
* dropout and augmentation strengths ride in ``PopState.hyper``, and the step
  rebuilds the network and augmentation from them while it is traced.

Every trial starts from the plan's seed — the same initial weights, batch
order, dropout and augmentation keys as ``advisor run`` on that trial's plan —
so each trial's history equals the one training it alone would give, within
float tolerance (tests/test_population.py).  ``Population.train`` runs the
trials either vmapped together or one after another through the same compiled
program unvmapped (no recompiling per trial); ``choose_mode`` times a few steps
of both, and their compiles, and keeps the one that should finish first: XLA
on a CPU runs a vmapped convolution slower than the trials in turn, and on a
GPU a vmapped convolution trains several times faster but compiles for long.  The host loop between epochs (``engine.searching.trials``) keeps each
trial's history, early stopping, plateau and pruning.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import struct

from advisor.contract.schemas import Plan
from engine.datasets.augment import make_augment
from engine.datasets.checks import CheckWarning, check_data, check_plan
from engine.datasets.data import Dataset, steps_for
from engine.nn.models import build_model
from engine.optim.freeze import make_stage_optimizer, stages_for
from engine.optim.losses import build_loss
from engine.optim.optimizers import build_optimizer, set_hyperparam
from engine.run import compute_dtype, initial_variables
from engine.runtime import compiler
from engine.runtime.sharding import trial_placement
from engine.searching.space import is_per_trial, per_trial_values, structure_key
from engine.training.supervised import DeviceData, has_conv
from engine.training.train import (
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

# Optimizer fields carried in the opt state per trial (the rate travels as lr_scale).
_OPTIMIZER_FIELDS = {"optimizer.weight_decay": "weight_decay", "optimizer.momentum": "momentum"}
# Timing a mode: at least this many seconds of steps (or _MAX_TIMED_STEPS), after one warm-up step.
_MIN_TIMED_S = 0.2
_MAX_TIMED_STEPS = 50


class PopState(struct.PyTreeNode):
    """The trials' training states and the per-trial values the step reads (leading trial axis when vmapped)."""

    trials: TrainState
    hyper: dict


@dataclass
class ModeChoice:
    """Population or sequential for ``k`` trials, and the timings behind the choice."""

    mode: str
    k: int
    population_s: float | None = None  # one vmapped step of k trials
    sequential_s: float | None = None  # one step of one trial
    population_compile_s: float | None = None  # the vmapped step's first call beyond a step
    sequential_compile_s: float | None = None
    steps: int | None = None  # steps each trial trains
    lanes: int = 1  # devices that sequential trials run on side by side (Population.lanes)

    @property
    def measured(self) -> bool:
        return self.population_s is not None

    @property
    def speedup(self) -> float | None:
        """How many times faster a population step trains the k trials than k steps in turn."""
        if not self.measured or not self.population_s:
            return None
        return self.k * self.sequential_s / self.population_s

    def expected_s(self, mode: str) -> float:
        """Seconds the k trials should take in ``mode``: its program's compile, then its steps."""
        if mode == "population":
            return self.population_compile_s + self.steps * self.population_s
        rounds = -(-self.k // self.lanes)  # trials each device trains in turn
        return self.sequential_compile_s + rounds * self.steps * self.sequential_s


class Population:
    """Trial plans of one structure, ready to train vmapped together or one after another.

    Args:
        plans: trial plans equal in everything but per-trial values.
        searched: the plan paths the search varies; the per-trial ones among them
            become arrays, every other value is taken from the plans as they are.
        dataset: the plans' data (``engine.datasets.data.load_data``).
        device: where to train.
        base_dir: folder that ``model.base`` is relative to.
        trial_devices: devices a vmapped population's trials are split over
            (``engine.runtime.sharding.TrialPlacement``), or sequential trials run on one
            each (``lanes``): N devices train N trials at once.  None = ``device`` alone.
    """

    def __init__(
        self,
        plans: Sequence[Plan],
        searched: Sequence[str],
        dataset: Dataset,
        device: jax.Device,
        base_dir: str | Path = ".",
        trial_devices: Sequence[jax.Device] | None = None,
    ):
        reference = plans[0]
        self.key = structure_key(reference)
        self.varied = tuple(p for p in searched if is_per_trial(p, reference))
        # a rate of 1: each trial's rate is its lr_scale (plan values are validated, so 1.0 is safe)
        self.unit = reference.model_copy(
            update={"optimizer": reference.optimizer.model_copy(update={"learning_rate": 1.0})}
        )
        self.warnings: list[CheckWarning] = check_plan(reference) + check_data(reference, dataset)
        dtype = compute_dtype(reference, device, self.warnings)
        self.device, self.dtype = device, dtype
        self.impl = "cpu" if device.platform == "cpu" else "xla"
        self.network = build_model(
            reference.model, reference.input_shape, reference.task, impl=self.impl, dtype=dtype
        )
        variables, _ = initial_variables(reference, self.network, Path(base_dir), self.warnings)
        self.trial_devices = tuple(trial_devices or (device,))
        self.spread = trial_placement(self.trial_devices)
        # with a trial mesh, data and initial weights sit on every device of it
        self.where = self.spread.replicated if self.spread else device
        self.variables = jax.device_put(variables, self.where)
        self.data_key, self.train_key = run_keys(reference.seed)  # those of advisor run
        self.data = DeviceData.put(dataset, self.where)
        self.n_train, self.n_val = dataset.n_train, dataset.n_val
        self.stages = stages_for(reference, self.network.n_blocks)
        self.loop = choose_loop(device.platform, has_conv(self.network))
        self.steps_per_epoch = steps_for(self.n_train, reference.batch_size)[0]
        self.loss_fn = build_loss(reference.loss, reference.task, self.data.class_counts)
        self.metrics_fn = make_metrics(reference.metrics, reference.task)
        self.opt_fields = tuple(_OPTIMIZER_FIELDS[p] for p in self.varied if p in _OPTIMIZER_FIELDS)
        self.hyper_paths = tuple(
            p for p in self.varied if p not in _OPTIMIZER_FIELDS and p != "optimizer.learning_rate"
        )
        self.assign(plans)
        self._programs: dict = {}
        self._modes: dict[int, ModeChoice] = {}
        self._lanes: list[Population] | None = None

    def assign(self, plans: Sequence[Plan]) -> None:
        """Train these trial plans next (same structure): the compiled programs are kept."""
        if any(structure_key(p) != self.key for p in plans):
            raise ValueError(
                "Population.assign: a plan of another structure; group them by engine.searching.space.structure_key"
            )
        for plan in plans:
            self._check_trial(plan)
        self.plans = list(plans)

    # ------------------------------------------------------------------------- what each trial gets

    def _check_trial(self, plan: Plan) -> None:
        """What the engine would reject in this trial alone (the arrays skip these checks)."""
        build_optimizer(plan.optimizer, plan.optimizer.learning_rate)
        augmentations = plan.regularization.augmentation
        if augmentations:
            make_augment(augmentations, plan.modality, tuple(plan.input_shape))

    @property
    def can_batch(self) -> bool:
        """Whether these trials can train in lockstep: early stopping inside an
        earlier stage moves a trial to its next stage alone, so such plans train one by one."""
        return len(self.stages) == 1 or self.plans[0].regularization.early_stopping is None

    def values(self, members: Sequence[int]) -> dict[str, jax.Array]:
        """Per-trial values of ``members`` as float32 arrays, by plan path."""
        rows = [per_trial_values(self.plans[i]) for i in members]
        return {path: jnp.asarray([row[path] for row in rows], jnp.float32) for path in rows[0]}

    def _network_for(self, hyper: dict):
        if "model.dropout" not in hyper:
            return self.network
        model = self.unit.model.model_copy(update={"dropout": hyper["model.dropout"]})
        return build_model(
            model, self.unit.input_shape, self.unit.task, impl=self.impl, dtype=self.dtype
        )

    def _augment_for(self, hyper: dict):
        augmentations = self.unit.regularization.augmentation
        if not augmentations:
            return None
        chosen = [
            a.model_copy(update={"strength": hyper[f"regularization.augmentation[{i}].strength"]})
            if f"regularization.augmentation[{i}].strength" in hyper
            else a
            for i, a in enumerate(augmentations)
        ]
        return make_augment(chosen, self.unit.modality, tuple(self.unit.input_shape))

    # ------------------------------------------------------------------------- compiled programs

    def _optimizer(self, stage):
        return make_stage_optimizer(
            self.unit, stage, self.steps_per_epoch, self.variables["params"], self.opt_fields
        )

    def _trial_step(self, stage, tx) -> Callable:
        config = StepConfig(
            self.unit.task, self.unit.loss.name, self.unit.n_classes, stage.frozen_blocks
        )

        def step(pop: PopState, batch: dict):
            train_step = make_train_step(
                self._network_for(pop.hyper), self.loss_fn, tx, config, self._augment_for(pop.hyper)
            )
            trials, metrics = train_step(pop.trials, batch)
            return pop.replace(trials=trials), metrics

        return step

    def program(self, stage_index: int, vmapped: bool) -> Program:
        """The compiled epoch and evaluation of one stage (built once per form)."""
        key = (stage_index, vmapped)
        if key not in self._programs:
            self._programs[key] = Program(self, stage_index, vmapped)
        return self._programs[key]

    # ------------------------------------------------------------------------- states

    def initial_state(self, members: Sequence[int], vmapped: bool) -> PopState:
        """The members' starting state: the plan's initial weights and keys, their per-trial values."""
        values = self.values(members)
        hyper = {p: values[p] if vmapped else values[p][0] for p in self.hyper_paths}
        # one compiled call, not an eager op per leaf (each would compile on its own)
        state = self._start(self.variables, self.train_key, hyper, len(members) if vmapped else 0)
        return self.spread.put_trials(state) if vmapped and self.spread else state

    @functools.partial(compiler.jit, static_argnums=(0, 4))
    def _start(self, variables: dict, key: jax.Array, hyper: dict, k: int) -> PopState:
        trials = TrainState.start(variables, key)  # each trial starts as advisor run would
        # new arrays either way: training donates the state, and the initial weights serve every trial
        trials = jax.tree.map(
            lambda a: jnp.repeat(a[None], k, axis=0) if k else jnp.copy(a), trials
        )
        return PopState(trials=trials, hyper=hyper)

    def with_rates(
        self,
        state: PopState,
        members: Sequence[int],
        vmapped: bool,
        scales: Sequence[float] | None = None,
    ) -> PopState:
        """``state`` whose members train at their rates, times their plateau multipliers ``scales``.

        Only values change, so nothing recompiles.
        """
        rates = self.values(members)["optimizer.learning_rate"]
        if scales is not None:
            rates = rates * jnp.asarray(scales, jnp.float32)
        opt_state = set_hyperparam(
            state.trials.opt_state, "lr_scale", rates if vmapped else rates[0]
        )
        # committed to the device like the rest of the state, or the next epoch recompiles
        where = self.spread.trials if vmapped and self.spread else self.where
        opt_state = jax.device_put(opt_state, where)
        return state.replace(trials=state.trials.replace(opt_state=opt_state))

    # ------------------------------------------------------------------------- one trial a device

    def lanes(self) -> list[Population]:
        """One view of this population per local trial device, for sequential trials side by side.

        Each lane holds its own copy of the data, initial weights and keys on its
        device and compiles its own programs, so a trial trained there runs on
        that device alone (``engine.searching.trials.train_trials``).  One device: this
        population itself.
        """
        here = [d for d in self.trial_devices if d.process_index == jax.process_index()]
        if len(here) < 2:
            return [self]
        if self._lanes is None:
            self._lanes = [self._on_device(d) for d in here]
        for lane in self._lanes:
            lane.plans = self.plans  # assign() renews the trials: every lane trains the new ones
        return self._lanes

    def _on_device(self, device: jax.Device) -> Population:
        lane = copy.copy(self)
        lane.device, lane.where, lane.spread, lane.trial_devices = device, device, None, (device,)
        lane.variables = jax.device_put(self.variables, device)
        lane.data_key, lane.train_key = jax.device_put((self.data_key, self.train_key), device)
        arrays = ("x_train", "y_train", "x_val", "y_val", "probe")
        lane.data = dataclasses.replace(
            self.data, **{name: jax.device_put(getattr(self.data, name), device) for name in arrays}
        )
        lane._programs, lane._modes, lane._lanes = {}, {}, None
        return lane

    # ------------------------------------------------------------------------- population or sequential

    def choose_mode(self, k: int, forced: str | None = None) -> ModeChoice:
        """Population or sequential for ``k`` trials, whichever should finish them first.

        A few steps of each are timed on one batch, and the first call of each
        (its compile) too; the population wins when compiling the vmapped
        program and running every trial's steps at once takes less time than
        compiling the single-trial program and running the trials in turn (one
        per device at a time over several devices: ``lanes``).  A
        vmapped convolution is slower than the trials in turn on a CPU, and on a
        GPU it compiles for long, so short trials there stay sequential.
        ``forced`` ("population" or "sequential") skips the timing.  One trial,
        or plans that cannot train in lockstep, are always sequential.
        """
        if k == 1 or not self.can_batch:
            return ModeChoice("sequential", k)
        if forced:
            return ModeChoice(forced, k)
        if k not in self._modes:
            members = list(range(k))
            population_s, population_compile_s = self._time_steps(members, vmapped=True)
            lanes = self.lanes()  # a sequential trial trains on one device of them
            sequential_s, sequential_compile_s = lanes[0]._time_steps(members[:1], vmapped=False)
            steps = sum(stage.epochs for stage in self.stages) * self.steps_per_epoch
            choice = ModeChoice(
                "",
                k,
                population_s,
                sequential_s,
                population_compile_s,
                sequential_compile_s,
                steps,
                lanes=len(lanes),
            )
            choice.mode = min(("sequential", "population"), key=choice.expected_s)
            self._modes[k] = choice
        return self._modes[k]

    def _time_steps(self, members: list[int], vmapped: bool) -> tuple[float, float]:
        """Seconds per training step of ``members`` on one fixed batch, and the first call's extra (compile)."""
        members = [i % len(self.plans) for i in members]
        program = self.program(0, vmapped)
        state = program.begin(self.initial_state(members, vmapped), members)
        size = min(self.unit.batch_size, self.n_train)
        index = jnp.arange(size)
        batch = {
            "x": self.data.x_train[index],
            "y": self.data.y_train[index],
            "mask": jnp.ones((size,), jnp.float32),
        }
        jitted = compiler.jit(program.step)
        started = time.perf_counter()
        state, metrics = jitted(state, batch)
        jax.block_until_ready(metrics["loss"])
        first = time.perf_counter() - started
        n, started = 0, time.perf_counter()
        while n < 2 or (time.perf_counter() - started < _MIN_TIMED_S and n < _MAX_TIMED_STEPS):
            state, metrics = jitted(state, batch)
            jax.block_until_ready(metrics["loss"])
            n += 1
        step = (time.perf_counter() - started) / n
        return step, max(0.0, first - step)


class Program:
    """One stage's compiled epoch and evaluation, for a population (vmapped) or one trial."""

    def __init__(self, population: Population, stage_index: int, vmapped: bool):
        pop = population
        self.population, self.vmapped = pop, vmapped
        self.stage = pop.stages[stage_index]
        self.tx = pop._optimizer(self.stage)
        step = pop._trial_step(self.stage, self.tx)
        config = StepConfig(
            pop.unit.task, pop.unit.loss.name, pop.unit.n_classes, self.stage.frozen_blocks
        )
        summary = make_epoch_summary(
            pop.network, config, pop.metrics_fn, pop.unit.model.activation, pop.n_train
        )
        evaluate = make_evaluate(pop.network, pop.loss_fn, config, pop.metrics_fn, pop.n_val)

        def trial_summary(state: PopState, step_metrics, y, order, probe):
            return summary(state.trials, step_metrics, y, order, probe)

        if vmapped:
            step = jax.vmap(step, in_axes=(0, None))
            # step metrics are stacked [steps, trials, ...]: the trial axis is 1
            trial_summary = jax.vmap(trial_summary, in_axes=(0, 1, None, None, None))
            self.evaluate = compiler.jit(
                jax.vmap(
                    lambda trials, x, y: evaluate(trials.variables(), x, y), in_axes=(0, None, None)
                )
            )
        else:
            self.evaluate = lambda trials, x, y: evaluate(trials.variables(), x, y)
        self.step = step
        self.epoch = make_train_epoch(
            step,
            trial_summary,
            pop.loop,
            pop.n_train,
            pop.unit.batch_size,
            pop.data_key,
            outputs_axis=1 if vmapped else 0,
            placement=pop.spread if vmapped else None,
        )
        self._fresh = compiler.jit(self._fresh_optimizer)

    def _fresh_optimizer(self, params, values: dict):
        """A new opt state of this stage's optimizer holding each trial's decay and momentum."""
        opt_state = (jax.vmap(self.tx.init) if self.vmapped else self.tx.init)(params)
        for field in self.population.opt_fields:
            opt_state = set_hyperparam(opt_state, field, values[f"optimizer.{field}"])
        return opt_state

    def begin(self, state: PopState, members: Sequence[int]) -> PopState:
        """The state at the start of this stage: a fresh optimizer with the members' values."""
        pop = self.population
        values = pop.values(members)
        values = {
            f"optimizer.{f}": values[f"optimizer.{f}"]
            if self.vmapped
            else values[f"optimizer.{f}"][0]
            for f in pop.opt_fields
        }
        opt_state = self._fresh(state.trials.params, values)
        return pop.with_rates(
            state.replace(trials=state.trials.replace(opt_state=opt_state)), members, self.vmapped
        )

    def run_epoch(self, state: PopState, epoch: int) -> tuple[PopState, dict]:
        """One training epoch of every member, then validation; values have a trial axis when vmapped."""
        d = self.population.data
        state, summary = self.epoch(
            state, d.x_train, d.y_train, d.probe, jnp.asarray(epoch, jnp.int32)
        )
        return state, {**summary, **self.evaluate(state.trials, d.x_val, d.y_val)}
