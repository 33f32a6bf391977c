"""The host loop around the compiled epochs: history, early stopping, plateau, NaN, progress.

``fit(trainer, plan)`` runs each ``Phase`` of a ``Trainer`` (what every
training builder returns: supervised, streamed, feature cache, GAN) for its
epochs and records one value per series per epoch; a phase is a training
stage (two_stage has two).  A phase knows how to run a compiled epoch and
validate, and how to copy, restore and re-rate its state; the loop knows nothing of models or losses, so supervised
training and GANs share it.  Decisions between epochs happen here, on the
host: ``PlateauController`` sets the rate multiplier, early stopping keeps the
best weights (restored at the end of the phase when ``restore_best``), and a
loss that is not finite raises ``Diverged`` carrying the history so far and
the last good weights (the initial ones when the first epoch diverges).
After each epoch the callbacks run (``engine.training.callbacks``: early stopping,
then the caller's; ``run_plan`` passes the live logs, the user's and the
checkpoints); ``resume`` continues from a checkpoint's epoch
(``engine.training.resume``), and a pending signal stops the loop
at the end of the epoch it arrived in: the epoch is one compiled call (a
``lax.scan`` on most models), so it is the smallest unit that can end
cleanly.  A progress bar with the live loss shows only when stdout is a terminal; the
caller may pass its own bar factory (the CLI draws with rich, ``engine.outputs.progress``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import jax

from advisor.contract.errors import EngineError
from advisor.contract.schemas import Plan
from engine.optim.schedules import plateau_controller
from engine.outputs.progress import BarFactory, bar_factory
from engine.training.callbacks import EarlyStoppingCallback as EarlyStopper  # noqa: F401 - engine.searching.trials


class Phase(Protocol):
    """One training stage, as the loop sees it."""

    epochs: int

    def begin(self, state: Any) -> Any: ...
    def run_epoch(self, state: Any, epoch: int) -> tuple[Any, dict]: ...
    def snapshot(self, state: Any) -> Any: ...
    def restore(self, state: Any, snapshot: Any) -> Any: ...
    def scale_lr(self, state: Any, scale: float) -> Any: ...


@dataclass(frozen=True)
class Trainer:
    """What every training builder returns and ``fit`` trains, whatever the path.

    ``engine.training.supervised.build_supervised`` (and its streamed twin
    ``engine.training.streaming.build_streamed``), ``engine.pretrained.features.build_feature_extractor``
    and ``engine.training.gan.build_gan`` each return one; their states are all
    ``engine.training.train.TrainState``, made by ``TrainState.start``.
    """

    phases: tuple[Phase, ...]  # in order; two_stage has two
    state: Any  # the initial TrainState, on the training device(s)
    variables_of: Callable[[Any], dict]  # a state -> the whole model's variables, as saved
    n_train: int  # training examples per epoch
    placement: Any = (
        None  # the engine.runtime.sharding.Placement batches are split over, if it shards
    )
    write_samples: Callable[[Any, Any], list[str]] | None = None  # (run dir, state) -> PNG paths
    base_from: dict | None = None  # the pretrained base's model.json, when model.base gave one


@dataclass
class FitResult:
    """What training produced: per-epoch series, the final (or best) state, how it ended."""

    epochs: list[int] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)
    state: Any = None
    best_epoch: int | None = None
    stopped_early: bool = False
    stopped_reason: str | None = None

    def record(self, epoch: int, values: dict[str, float | None]) -> None:
        for name in set(self.series) | set(values):
            column = self.series.setdefault(name, [None] * len(self.epochs))
            column.append(values.get(name))
        self.epochs.append(epoch)

    def at(self, epoch: int) -> dict[str, float | None]:
        """Every series' value at ``epoch``."""
        i = self.epochs.index(epoch)
        return {name: values[i] for name, values in self.series.items()}


class Diverged(EngineError):
    """The loss stopped being finite; carries the history so far and the last good state."""

    def __init__(self, message: str, result: FitResult, last_good_epoch: int | None):
        super().__init__(message)
        self.result, self.last_good_epoch = result, last_good_epoch


def _finite(value: float | None) -> bool:
    return value is None or math.isfinite(value)


# Series whose NaN means "does not apply" (e.g. dead units under tanh), stored as None.
_OPTIONAL = ("dead_fraction",)


def _host_values(values: dict) -> dict[str, float | None]:
    out = {}
    for name, value in jax.device_get(values).items():
        value = float(value)
        out[name] = None if name in _OPTIONAL and math.isnan(value) else value
    return out


@dataclass
class Resumed:
    """Where a checkpoint left training (``engine.training.resume``): fit continues after ``epoch``."""

    epoch: int
    phase: int
    phase_epoch: int
    phase_done: bool  # the phase ended at this epoch (early stopping)
    result: FitResult
    # (state template, weights-snapshot template) -> (state, best snapshot or None)
    load: Callable[[Any, Any], tuple[Any, Any]]
    stopper: dict | None = None  # EarlyStoppingCallback.state_dict()
    plateau: dict | None = None  # PlateauController's counters


class Interrupted(EngineError):
    """A signal asked the run to stop; raised after the epoch it arrived in (and its checkpoint)."""

    def __init__(self, signal_name: str, result: FitResult, epoch: int, detail: str = ""):
        from engine.runtime.signals import EXIT_CODES

        where = f"after epoch {epoch}" if epoch else "before the first epoch ended"
        super().__init__(
            f"interrupted by {signal_name} {where}" + (f": {detail}" if detail else "")
        )
        self.signal_name, self.result, self.epoch = signal_name, result, epoch
        self.exit_code = EXIT_CODES.get(signal_name, 1)


def _plateau_state(plateau) -> dict | None:
    if plateau is None:
        return None
    return {
        "best": None if math.isinf(plateau.best) else plateau.best,
        "scale": plateau.scale,
        "wait": plateau.wait,
        "cooldown_left": plateau.cooldown_left,
    }


def _load_plateau(plateau, data: dict | None) -> None:
    if plateau is None or data is None:
        return
    plateau.best = math.inf if data["best"] is None else float(data["best"])
    plateau.scale, plateau.wait = float(data["scale"]), int(data["wait"])
    plateau.cooldown_left = int(data["cooldown_left"])


def fit(
    trainer: Trainer,
    plan: Plan,
    progress: bool | None | BarFactory = None,
    callbacks: list | tuple = (),
    resume: Resumed | None = None,
    interrupted: Any = None,
) -> FitResult:
    """Train ``trainer``'s phases in order from its state; returns the history and final (or best) state.

    Args:
        callbacks: ``on_epoch_end(EpochState, logs) -> stop?`` after each epoch,
            in order, after the engine's early stopping (``engine.training.callbacks``).
        resume: continue after a checkpoint's epoch instead of starting afresh.
        interrupted: a callable returning the name of a signal that asked the run to
            stop (or None); checked after each epoch's callbacks.

    Raises:
        Diverged: the training or validation loss became NaN or infinite.
        Interrupted: ``interrupted()`` named a signal (after that epoch's callbacks ran).
    """
    from engine.training.callbacks import EarlyStoppingCallback, EpochState, callback_name

    phases, state = trainer.phases, trainer.state
    result = resume.result if resume else FitResult()
    factory = bar_factory(progress)
    total = sum(p.epochs for p in phases)
    bar = factory("epoch", total, resume.epoch if resume else 0) if factory else None
    epoch = resume.epoch if resume else 0
    last_good = None
    stop_all = False
    try:
        for index, phase in enumerate(phases):
            if resume and index < resume.phase:
                continue
            template = phase.begin(state)
            spec = plan.regularization.early_stopping
            stopper = EarlyStoppingCallback(spec) if spec else None
            plateau = plateau_controller(plan.schedule)
            done = 0
            if resume and index == resume.phase:
                # begin() built the compiled epoch; the checkpoint's state replaces its fresh one
                state, best = resume.load(template, phase.snapshot(template))
                done = resume.phase_epoch
                if stopper is not None and resume.stopper is not None:
                    stopper.load_state_dict(resume.stopper, best)
                _load_plateau(plateau, resume.plateau)
                if resume.phase_done:
                    done = phase.epochs
                resume = None
            else:
                state = template
            if last_good is None:
                # a loss that is not finite in the first epoch keeps these (the initial) weights
                last_good = (epoch, phase.snapshot(state))
            while done < phase.epochs:
                done += 1
                epoch += 1
                started = time.perf_counter()
                state, values = phase.run_epoch(state, epoch)
                values = _host_values(values)
                values["epoch_time"] = time.perf_counter() - started
                result.record(epoch, values)
                if bar:
                    bar.update(epoch, _epoch_text(values))
                bad = [
                    k
                    for k in ("loss", "val_loss", "d_loss", "g_loss")
                    if not _finite(values.get(k))
                ]
                if bad:
                    result.state = phase.restore(state, last_good[1])
                    result.stopped_reason = f"{bad[0]} became {values[bad[0]]} at epoch {epoch}"
                    raise Diverged(result.stopped_reason, result, last_good[0])
                last_good = (epoch, phase.snapshot(state))
                if plateau is not None:
                    state = phase.scale_lr(state, plateau.update(values["val_loss"]))
                view = EpochState(epoch, index, done, state, result, last_good[1])
                phase_stop = stopper is not None and stopper.on_epoch_end(view, values)
                if phase_stop:
                    result.stopped_early, result.stopped_reason = True, stopper.reason
                view.fit_state = {
                    "phase_done": phase_stop or done == phase.epochs,
                    "stopper": stopper.state_dict() if stopper else None,
                    "best_snapshot": stopper.best[1] if stopper and stopper.best else None,
                    "plateau": _plateau_state(plateau),
                }
                for callback in callbacks:
                    if callback.on_epoch_end(view, values) and not stop_all:
                        stop_all = True
                        result.stopped_early = True
                        result.stopped_reason = (
                            f"stopped by callback {callback_name(callback)} at epoch {epoch}"
                        )
                signal_name = interrupted() if interrupted else None
                if signal_name:
                    result.state = state
                    raise Interrupted(signal_name, result, epoch)
                if phase_stop or stop_all:
                    break
            if stopper is not None and spec.restore_best and stopper.best is not None:
                state = phase.restore(state, stopper.best[1])
                result.best_epoch = stopper.best[0]
            if stop_all:
                break
    finally:
        if bar:
            bar.close()
    result.state = state
    return result


def _epoch_text(values: dict) -> str:
    """The latest losses a progress bar shows beside the epoch count."""
    return "  ".join(
        f"{k} {values[k]:.4g}"
        for k in ("loss", "val_loss", "d_loss", "g_loss")
        if values.get(k) is not None
    )
