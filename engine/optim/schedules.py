"""Learning-rate schedules by name (the ``SCHEDULES`` registry) and the plateau controller.

A schedule is an ``optax.Schedule``: a pure function step -> learning rate,
evaluated inside the compiled step.  Each registered factory has the signature
``make(sched_plan: SchedulePlan, base_lr: float, steps_per_epoch: int,
epochs: int) -> optax.Schedule`` and describes the schedule *after* warmup,
over the ``epochs`` it is given.  ``build_schedule`` (same arguments, the plan's
total epochs) is the entry point: it prepends the linear warmup of
``sched_plan.warmup_epochs``, which applies to every schedule, and hands the
factory the epochs that remain.

``reduce_on_plateau`` is a constant schedule on the device plus a host-side
``PlateauController``, updated once per epoch on the monitored validation
value; its multiplier reaches the optimizer without recompiling (see
``engine.optim.optimizers.set_lr_scale``).  optax's own ``contrib.reduce_on_plateau``
is not used: it tests ``value < (1 - rtol) * best``, which for a negative best
counts a worse value as an improvement, so the rate never drops.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import optax

from advisor.contract.errors import InputError
from advisor.contract.schemas import SchedulePlan
from engine.runtime.registry import Registry

SCHEDULES: Registry = Registry("schedule")


def _required(sched_plan: SchedulePlan, field: str) -> int:
    value = getattr(sched_plan, field)
    if value is None:
        raise InputError(f"schedule.{field}: required for schedule {sched_plan.name!r}")
    return value


@SCHEDULES.register("constant")
def make_constant(
    sched_plan: SchedulePlan, base_lr: float, steps_per_epoch: int, epochs: int
) -> optax.Schedule:
    """The same rate at every step."""
    del sched_plan, steps_per_epoch, epochs
    return optax.constant_schedule(base_lr)


@SCHEDULES.register("reduce_on_plateau")
def make_reduce_on_plateau(
    sched_plan: SchedulePlan, base_lr: float, steps_per_epoch: int, epochs: int
) -> optax.Schedule:
    """Constant on the device; drops come from ``PlateauController`` on the host."""
    del steps_per_epoch, epochs
    _required(sched_plan, "patience")
    return optax.constant_schedule(base_lr)


@SCHEDULES.register("step")
def make_step(
    sched_plan: SchedulePlan, base_lr: float, steps_per_epoch: int, epochs: int
) -> optax.Schedule:
    """Multiply by ``factor`` every ``step_epochs`` epochs (drops on epoch boundaries)."""
    every = _required(sched_plan, "step_epochs") * steps_per_epoch
    drops = {every * k: sched_plan.factor for k in range(1, epochs * steps_per_epoch // every + 1)}
    return optax.piecewise_constant_schedule(base_lr, drops)


@SCHEDULES.register("exponential")
def make_exponential(
    sched_plan: SchedulePlan, base_lr: float, steps_per_epoch: int, epochs: int
) -> optax.Schedule:
    """Multiply by ``factor`` per epoch, smoothly from step to step."""
    del epochs
    return optax.exponential_decay(base_lr, steps_per_epoch, sched_plan.factor)


@SCHEDULES.register("cosine")
def make_cosine(
    sched_plan: SchedulePlan, base_lr: float, steps_per_epoch: int, epochs: int
) -> optax.Schedule:
    """Half a cosine from ``base_lr`` down to ``min_ratio * base_lr`` at the last step."""
    return optax.cosine_decay_schedule(
        base_lr, epochs * steps_per_epoch, alpha=sched_plan.min_ratio
    )


@SCHEDULES.register("warmup_cosine")
def make_warmup_cosine(
    sched_plan: SchedulePlan, base_lr: float, steps_per_epoch: int, epochs: int
) -> optax.Schedule:
    """Cosine decay after the warmup; the warmup itself is ``build_schedule``'s, so it needs one."""
    if sched_plan.warmup_epochs == 0:
        raise InputError(
            "schedule.warmup_epochs: warmup_cosine needs at least 1 warmup epoch; "
            "set warmup_epochs or name schedule 'cosine'"
        )
    return make_cosine(sched_plan, base_lr, steps_per_epoch, epochs)


@SCHEDULES.register("cosine_restarts")
def make_cosine_restarts(
    sched_plan: SchedulePlan, base_lr: float, steps_per_epoch: int, epochs: int
) -> optax.Schedule:
    """SGDR (Loshchilov & Hutter 2017): a cosine every ``cycle_epochs``, back at ``base_lr``."""
    del epochs
    cycle = _required(sched_plan, "cycle_epochs") * steps_per_epoch
    floor = base_lr * sched_plan.min_ratio

    def schedule(step):
        phase = jnp.mod(step, cycle) / cycle
        return floor + (base_lr - floor) * 0.5 * (1.0 + jnp.cos(jnp.pi * phase))

    return schedule


def build_schedule(
    sched_plan: SchedulePlan, base_lr: float, steps_per_epoch: int, epochs: int
) -> optax.Schedule:
    """The plan's schedule over ``epochs``, with its linear warmup in front.

    The warmup climbs ``base_lr * (step + 1) / warmup_steps``, so no step trains at
    rate 0 and the last warmup step reaches ``base_lr``; the named schedule then
    starts from its own step 0 over the epochs that remain.
    """
    if sched_plan.warmup_epochs >= epochs:
        raise InputError(
            f"schedule.warmup_epochs: {sched_plan.warmup_epochs} leaves no epoch of the "
            f"{epochs} to train after warmup; expected fewer than {epochs}"
        )
    make = SCHEDULES.get(sched_plan.name)
    main = make(sched_plan, base_lr, steps_per_epoch, epochs - sched_plan.warmup_epochs)
    n_warmup = sched_plan.warmup_epochs * steps_per_epoch

    def schedule(step):
        # A float step: optax's schedules mix the step with float constants, which
        # strict dtype promotion rejects for the int32 count of inject_hyperparams.
        step = jnp.asarray(step).astype(jnp.float32)
        if n_warmup == 0:
            return jnp.asarray(main(step), jnp.float32)
        warm = base_lr * jnp.minimum(step + 1.0, n_warmup) / n_warmup
        rate = jnp.where(step < n_warmup, warm, main(jnp.maximum(step - n_warmup, 0.0)))
        return rate.astype(jnp.float32)

    return schedule


class PlateauController:
    """Reduce-on-plateau on the host: ``update(value)`` once per epoch -> rate multiplier.

    An epoch improves when the value beats the best so far by more than
    ``min_delta`` in absolute terms (``value < best - min_delta`` in mode "min"),
    which is right for values of any sign.  After ``patience`` epochs without
    improvement the multiplier is scaled by ``factor``; then ``cooldown`` epochs
    pass before epochs count again.  NaN never counts as an improvement.

    Example:
        >>> plateau = PlateauController(factor=0.5, patience=2)
        >>> [plateau.update(v) for v in (-1.0, -1.0, -1.0, -2.0)]
        [1.0, 1.0, 0.5, 0.5]
    """

    def __init__(
        self,
        factor: float,
        patience: int,
        min_delta: float = 1e-4,  # Keras' default: noise in the fourth decimal is no progress
        cooldown: int = 0,
        mode: str = "min",
        min_scale: float = 0.0,
    ):
        if not 0.0 < factor < 1.0:
            raise InputError(
                f"schedule.factor: {factor} does not reduce the rate; expected 0 < factor < 1"
            )
        if mode not in ("min", "max"):
            raise InputError(f"mode: {mode!r} is not a mode; expected min or max")
        self.factor, self.patience, self.min_delta = factor, patience, min_delta
        self.cooldown, self.mode, self.min_scale = cooldown, mode, min_scale
        self.best = math.inf
        self.scale = 1.0
        self.wait = 0
        self.cooldown_left = 0

    def _improves(self, value: float) -> bool:
        signed = value if self.mode == "min" else -value
        return signed < self.best - self.min_delta  # NaN compares False

    def update(self, value: float) -> float:
        """Record one epoch's monitored value; return the multiplier to apply from now on."""
        value = float(value)
        in_cooldown = self.cooldown_left > 0
        if in_cooldown:
            self.cooldown_left -= 1
        if self._improves(value):
            self.best = value if self.mode == "min" else -value
            self.wait = 0
        elif not in_cooldown:
            self.wait += 1
            if self.wait >= self.patience:
                self.scale = max(self.scale * self.factor, self.min_scale)
                self.cooldown_left = self.cooldown
                self.wait = 0
        return self.scale


def plateau_controller(sched_plan: SchedulePlan) -> PlateauController | None:
    """The host-side controller a reduce_on_plateau plan needs; None for other schedules."""
    if sched_plan.name != "reduce_on_plateau":
        return None
    return PlateauController(sched_plan.factor, _required(sched_plan, "patience"))
