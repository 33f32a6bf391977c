"""The host loop around the compiled epochs: history, early stopping, plateau, NaN, progress.

``fit(phases, state, plan)`` runs each ``Phase`` (a training stage: two_stage
has two) for its epochs and records one value per series per epoch.  A phase
knows how to run a compiled epoch and validate, and how to copy, restore and
re-rate its state; the loop knows nothing of models or losses, so supervised
training and GANs share it.  Decisions between epochs happen here, on the
host: ``PlateauController`` sets the rate multiplier, early stopping keeps the
best weights (restored at the end of the phase when ``restore_best``), and a
loss that is not finite raises ``Diverged`` carrying the history so far and
the last good weights.  A progress bar with the live loss shows only when
stdout is a terminal.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import jax

from advisor.errors import EngineError
from advisor.schemas import EarlyStopping, Plan
from engine.schedules import plateau_controller


class Phase(Protocol):
    """One training stage, as the loop sees it."""

    epochs: int

    def begin(self, state: Any) -> Any: ...
    def run_epoch(self, state: Any, epoch: int) -> tuple[Any, dict]: ...
    def snapshot(self, state: Any) -> Any: ...
    def restore(self, state: Any, snapshot: Any) -> Any: ...
    def scale_lr(self, state: Any, scale: float) -> Any: ...


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


class EarlyStopper:
    """Keras-style early stopping on one history series."""

    def __init__(self, spec: EarlyStopping):
        self.spec = spec
        self.best = math.inf
        self.wait = 0

    def improved(self, value: float | None) -> bool:
        """Record an epoch's value; True when it beats the best by more than min_delta."""
        if value is None or not math.isfinite(value):
            self.wait += 1
            return False
        signed = value if self.spec.mode == "min" else -value
        if signed < self.best - self.spec.min_delta:
            self.best, self.wait = signed, 0
            return True
        self.wait += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.wait >= self.spec.patience


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


def fit(phases: list[Phase], state: Any, plan: Plan, progress: bool | None = None) -> FitResult:
    """Train through ``phases`` in order; returns the history and the final (or best) state.

    Raises:
        Diverged: the training or validation loss became NaN or infinite.
    """
    result = FitResult()
    show = sys.stdout.isatty() if progress is None else progress
    total = sum(p.epochs for p in phases)
    bar = _ProgressBar(total) if show else None
    epoch = 0
    last_good = None
    try:
        for phase in phases:
            state = phase.begin(state)
            spec = plan.regularization.early_stopping
            stopper = EarlyStopper(spec) if spec else None
            plateau = plateau_controller(plan.schedule)
            best = None
            for _ in range(phase.epochs):
                epoch += 1
                started = time.perf_counter()
                state, values = phase.run_epoch(state, epoch)
                values = _host_values(values)
                values["epoch_time"] = time.perf_counter() - started
                result.record(epoch, values)
                if bar:
                    bar.update(epoch, values)
                bad = [
                    k
                    for k in ("loss", "val_loss", "d_loss", "g_loss")
                    if not _finite(values.get(k))
                ]
                if bad:
                    result.state = phase.restore(state, last_good[1]) if last_good else None
                    result.stopped_reason = f"{bad[0]} became {values[bad[0]]} at epoch {epoch}"
                    raise Diverged(
                        result.stopped_reason, result, last_good[0] if last_good else None
                    )
                last_good = (epoch, phase.snapshot(state))
                if plateau is not None:
                    state = phase.scale_lr(state, plateau.update(values["val_loss"]))
                if stopper is not None:
                    if stopper.improved(values.get(spec.monitor)):
                        best = last_good
                    if stopper.should_stop:
                        result.stopped_early = True
                        result.stopped_reason = (
                            f"early stopping: {spec.monitor} did not improve by more than "
                            f"{spec.min_delta:g} for {spec.patience} epochs"
                        )
                        break
            if stopper is not None and spec.restore_best and best is not None:
                state = phase.restore(state, best[1])
                result.best_epoch = best[0]
    finally:
        if bar:
            bar.close()
    result.state = state
    return result


class _ProgressBar:
    """A rich progress bar over epochs showing the latest loss and validation loss."""

    def __init__(self, total: int):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("epoch"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = self.progress.add_task("", total=total)
        self.progress.start()

    def update(self, epoch: int, values: dict) -> None:
        shown = [
            f"{k} {values[k]:.4g}"
            for k in ("loss", "val_loss", "d_loss", "g_loss")
            if values.get(k) is not None
        ]
        self.progress.update(self.task, completed=epoch, description="  ".join(shown))

    def close(self) -> None:
        self.progress.stop()
