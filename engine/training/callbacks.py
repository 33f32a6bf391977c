"""Callbacks between epochs: ``on_epoch_end(state, logs) -> stop?``.

``engine.training.fit`` calls every callback after each epoch with an ``EpochState``
(the epoch, the phase, the training state, the history so far) and the
epoch's logs (one value per history series).  A callback that returns True
stops training after that epoch.  The engine's own between-epoch work runs
through the same protocol: ``EarlyStoppingCallback`` here, the live logs
(``engine.outputs.live_log.LiveLogCallback``) and the training-state checkpoints
(``engine.training.resume.CheckpointCallback``), so a user's callback sees exactly
what they see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from advisor.contract.schemas import EarlyStopping


@dataclass
class EpochState:
    """What a callback sees after an epoch."""

    epoch: int  # 1-based, counted over all phases
    phase: int  # index of the phase (a two_stage plan has two)
    phase_epoch: int  # epochs done in this phase
    state: Any  # the training state (a pytree: params, optimizer state, step, key)
    result: Any  # engine.training.fit.FitResult: the history so far
    snapshot: Any = (
        None  # a copy of the weights after this epoch (engine.training.fit.Phase.snapshot)
    )
    # what fit needs to continue from here: phase_done, stopper, best_snapshot, plateau
    fit_state: dict | None = None


class Callback(Protocol):
    """Anything with ``on_epoch_end``; True means stop after this epoch."""

    def on_epoch_end(self, state: EpochState, logs: dict) -> bool | None: ...


class EarlyStoppingCallback:
    """Keras-style early stopping on one history series; keeps the best epoch's weights.

    One instance per phase: ``engine.training.fit`` restores ``best`` at the phase's end
    when the plan asks for ``restore_best``.
    """

    def __init__(self, spec: EarlyStopping):
        self.spec = spec
        self.best_value = math.inf  # signed: lower is better
        self.wait = 0
        self.best: tuple[int, Any] | None = None  # (epoch, weights snapshot)

    def improved(self, value: float | None) -> bool:
        """Record an epoch's value; True when it beats the best by more than min_delta."""
        if value is None or not math.isfinite(value):
            self.wait += 1
            return False
        signed = value if self.spec.mode == "min" else -value
        if signed < self.best_value - self.spec.min_delta:
            self.best_value, self.wait = signed, 0
            return True
        self.wait += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.wait >= self.spec.patience

    @property
    def reason(self) -> str:
        return (
            f"early stopping: {self.spec.monitor} did not improve by more than "
            f"{self.spec.min_delta:g} for {self.spec.patience} epochs"
        )

    def on_epoch_end(self, state: EpochState, logs: dict) -> bool:
        if self.improved(logs.get(self.spec.monitor)):
            self.best = (state.epoch, state.snapshot)
        return self.should_stop

    def state_dict(self) -> dict:
        """The counters a resumed run needs (the best weights travel in the checkpoint)."""
        return {
            "best_value": None if math.isinf(self.best_value) else self.best_value,
            "wait": self.wait,
            "best_epoch": self.best[0] if self.best else None,
        }

    def load_state_dict(self, data: dict, best_snapshot: Any) -> None:
        value = data["best_value"]
        self.best_value = math.inf if value is None else float(value)
        self.wait = int(data["wait"])
        epoch = data["best_epoch"]
        self.best = (int(epoch), best_snapshot) if epoch is not None else None


def as_callback(obj: Any) -> Callback:
    """A callback object, or a plain function ``f(state, logs) -> stop?`` wrapped as one."""
    if hasattr(obj, "on_epoch_end"):
        return obj
    if callable(obj):
        return _FunctionCallback(obj)
    from advisor.contract.errors import InputError

    raise InputError(
        f"callbacks: got a {type(obj).__name__}; expected an object with "
        "on_epoch_end(state, logs) or a function of (state, logs)"
    )


class _FunctionCallback:
    def __init__(self, fn):
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)

    def on_epoch_end(self, state: EpochState, logs: dict) -> bool | None:
        return self.fn(state, logs)


def callback_name(callback: Any) -> str:
    """A name for messages: the function's or the class's."""
    return getattr(callback, "__name__", None) or type(callback).__name__
