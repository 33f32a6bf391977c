"""The host loop around a population's compiled epochs: one history per trial.

``train_trials(population, members, mode, on_epoch)`` trains the members of an
``engine.searching.population.Population`` vmapped together ("population") or one after
another through one compiled program ("sequential"; over several devices one
trial per device at a time, ``Population.lanes``) and returns a
``TrialOutcome`` per member.  Between epochs each trial is looked after as
``engine.training.fit`` looks after a run: its values are recorded, a loss that stops
being finite ends it (``diverged``), reduce-on-plateau changes its own rate,
early stopping ends its stage and remembers its best epoch, and ``on_epoch``
(the search's pruner) may end it (``pruned``).  A trial that has ended stays
in the compiled program until the last member ends; its values are no longer
recorded.
"""

from __future__ import annotations

import math
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from advisor.contract.schemas import Plan
from engine.optim.schedules import plateau_controller
from engine.searching.population import Population
from engine.training.fit import EarlyStopper, FitResult

# Series whose NaN means "does not apply" (dead units under tanh), stored as None, as engine.training.fit does.
_OPTIONAL = ("dead_fraction",)
# A non-finite value of these ends a trial, as it ends a run.
_GUARDED = ("loss", "val_loss")

OnEpoch = Callable[[int, int, dict], bool]  # (member, epoch, values) -> True to prune the trial


@dataclass
class TrialOutcome:
    """One trial's history and how it ended: "complete", "pruned" or "diverged"."""

    plan: Plan
    result: FitResult
    status: str = "complete"
    device: str | None = None  # where a sequential trial trained (None: vmapped with others)

    @property
    def final_epoch(self) -> int | None:
        """The epoch the run ends with: the restored best one, else the last."""
        return self.result.best_epoch or (self.result.epochs[-1] if self.result.epochs else None)

    def value(self, metric: str) -> float | None:
        """``metric`` at the final epoch (what ``advisor run`` on this plan reports)."""
        epoch = self.final_epoch
        return None if epoch is None else self.result.at(epoch).get(metric)


class _Trial:
    """One trial's host-side state while it trains."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.outcome = TrialOutcome(plan, FitResult())
        self.ended = False  # diverged or pruned: nothing more is recorded
        self.stage_done = False  # early stopping ended the current stage
        self.scale = 1.0

    def begin_stage(self) -> None:
        spec = self.plan.regularization.early_stopping
        self.stopper = EarlyStopper(spec) if spec else None
        self.plateau = plateau_controller(self.plan.schedule)
        self.best: int | None = None
        self.stage_done = False
        self.scale = 1.0  # the optimizer of a new stage starts at the plan's rate

    @property
    def running(self) -> bool:
        return not (self.ended or self.stage_done)

    def record(self, epoch: int, values: dict) -> bool:
        """Record one epoch; returns True when it improved the monitored series."""
        result = self.outcome.result
        result.record(epoch, values)
        bad = [k for k in _GUARDED if values.get(k) is not None and not math.isfinite(values[k])]
        if bad:
            result.stopped_reason = f"{bad[0]} became {values[bad[0]]} at epoch {epoch}"
            self.outcome.status, self.ended = "diverged", True
            return False
        if self.plateau is not None:
            self.scale = self.plateau.update(values["val_loss"])
        if self.stopper is None:
            return False
        spec = self.plan.regularization.early_stopping
        improved = self.stopper.improved(values.get(spec.monitor))
        if improved:
            self.best = epoch
        if self.stopper.should_stop:
            result.stopped_early, self.stage_done = True, True
            result.stopped_reason = (
                f"early stopping: {spec.monitor} did not improve by more than "
                f"{spec.min_delta:g} for {spec.patience} epochs"
            )
        return improved

    def end_stage(self) -> None:
        spec = self.plan.regularization.early_stopping
        if (
            spec is not None
            and spec.restore_best
            and self.best is not None
            and self.outcome.status != "diverged"
        ):
            self.outcome.result.best_epoch = self.best


def train_trials(
    population: Population, members: Sequence[int], mode: str, on_epoch: OnEpoch | None = None
) -> list[TrialOutcome]:
    """Train ``members`` (indices into ``population.plans``) and return their outcomes in order."""
    if mode == "population":
        return _lockstep(population, list(members), True, on_epoch)
    members = list(members)
    lanes = population.lanes() if len(members) > 1 else [population]
    if len(lanes) == 1:
        return [outcome for i in members for outcome in _lockstep(population, [i], False, on_epoch)]
    return _side_by_side(lanes, members, on_epoch)


def _side_by_side(
    lanes: list[Population], members: list[int], on_epoch: OnEpoch | None
) -> list[TrialOutcome]:
    """Sequential trials one per device at once: each device that comes free takes the next.

    A thread per device dispatches its trial's epochs (jax releases the GIL while
    a device computes); an error or Ctrl-C in one cancels the trials not started.
    """
    free: queue.SimpleQueue[Population] = queue.SimpleQueue()
    for lane in lanes:
        free.put(lane)

    def one(member: int) -> TrialOutcome:
        lane = free.get()  # never waits: no more trials run than there are lanes
        try:
            return _lockstep(lane, [member], False, on_epoch)[0]
        finally:
            free.put(lane)

    pool = ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="trial")
    try:
        futures = [pool.submit(one, member) for member in members]
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _row(values: dict, j: int | None) -> dict[str, float | None]:
    out = {}
    for name, value in values.items():
        value = float(value if j is None else value[j])
        out[name] = None if name in _OPTIONAL and math.isnan(value) else value
    return out


def _lockstep(
    pop: Population, members: list[int], vmapped: bool, on_epoch: OnEpoch | None
) -> list[TrialOutcome]:
    """Train ``members`` epoch by epoch in one state (a trial axis when vmapped)."""
    trials = [_Trial(pop.plans[i]) for i in members]
    if not vmapped:
        trials[0].outcome.device = str(pop.device)
    # weights of the best epoch, only where a later stage starts from them (one trial: see can_batch)
    keep_best = len(pop.stages) > 1 and not vmapped
    state = pop.initial_state(members, vmapped)
    epoch = 0
    for index, stage in enumerate(pop.stages):
        program = pop.program(index, vmapped)
        state = program.begin(state, members)
        best_weights = None
        for trial in trials:
            trial.begin_stage()
        for _ in range(stage.epochs):
            if not any(t.running for t in trials):
                break
            epoch += 1
            started = time.perf_counter()
            state, values = program.run_epoch(state, epoch)
            values = jax.device_get(values)
            elapsed = time.perf_counter() - started
            scales = [t.scale for t in trials]
            for j, (member, trial) in enumerate(zip(members, trials, strict=True)):
                if not trial.running:
                    continue
                row = {**_row(values, j if vmapped else None), "epoch_time": elapsed}
                improved = trial.record(epoch, row)
                if improved and keep_best:
                    best_weights = jax.tree.map(
                        jnp.copy, (state.trials.params, state.trials.batch_stats)
                    )
                if not trial.ended and on_epoch is not None and on_epoch(member, epoch, row):
                    trial.outcome.status, trial.ended = "pruned", True
            if [t.scale for t in trials] != scales:
                state = pop.with_rates(state, members, vmapped, [t.scale for t in trials])
        for trial in trials:
            trial.end_stage()
        if best_weights is not None and trials[0].outcome.result.best_epoch is not None:
            params, batch_stats = best_weights
            state = state.replace(
                trials=state.trials.replace(params=params, batch_stats=batch_stats)
            )
        if all(t.ended for t in trials):
            break
    return [t.outcome for t in trials]
