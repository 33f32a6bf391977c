"""Curve features of a training history, computed once, for the diagnosis rules.

Every feature is a fact named ``curve.<series>.<feature>`` (``curve.loss.noise``,
``curve.val_loss.rise_from_best``) or ``curve.<name>`` for the run as a whole
(``curve.gap.growth``, ``curve.chance_loss``); their meanings are declared with
the other facts in ``advisor.contract.vocabulary``.  This module only measures (the array
measures themselves are in ``advisor.diagnostics.curve_measures``): the thresholds that turn
a measurement into a problem live in ``rules/50_*.toml``.  numpy only.

Loss-like curves are studied in log space where they are positive, because
training losses fall roughly geometrically: there a steady decay is a straight
line, and noise and flatness are relative changes, free of the loss's scale.
Trends are read from a local linear smoothing; noise from second differences.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from advisor.contract.schemas import History
from advisor.diagnostics.curve_measures import (
    CAP,
    LR_RISE,
    deceleration,
    log_space,
    lr_raises,
    noise,
    r_squared,
    recent,
    rise,
    rise_from_min,
    rounding_unit,
    scheduled_moves,
    share,
    sign_changes,
    smooth,
    spike,
    stall,
    still_rising,
    sustained_rise,
    tail_mean,
    tail_progress,
)
from advisor.diagnostics.gan_curves import gan_features
from advisor.diagnostics.measure_thresholds import built_in_thresholds

WINDOW_FRACTION = 0.2  # "recent" = the last fifth of the run, at least MIN_WINDOW epochs
MIN_WINDOW = 3
# Wobble and jumps are relative to the value plus a tenth of the curve's range or of the
# chance-level loss, whichever is larger: near zero a loss flickers by large fractions harmlessly.
FLOOR_SHARE = 0.1
# A one-epoch jump as a reader takes it (relative to the value before), floored at a hundredth
# of the curve's range after its first epoch so that a loss at 1e-6 stepping to 3e-6 is not a
# 200 % jump (the first epoch, an average over the steps from the random init, would set the
# floor for the whole run when it lies far above the rest).
JUMP_FLOOR = 0.01
RISE_FLOOR = 0.02  # the rise from the best is relative to the best plus 2 % of the chance loss
# The early phase of a run: its first fifth, where one overshoot that the optimiser recovers
# from is the catapult of a large first step, not a rate too high for the run.
EARLY_FRACTION = 0.2
MIN_EPOCHS_FOR_SHAPE = 4  # fewer points than this carry no trend or noise information
CROSS_ENTROPY_LOSSES = (
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)
LOSS_SERIES = ("loss", "val_loss")
# Series that only a two-class problem logs: chance level is then that of a coin.
BINARY_SERIES = ("auc", "val_auc", "binary_accuracy", "val_binary_accuracy")
# Guessing K from the history alone: the first loss within 10 % of log K together with the
# first accuracy within a fifth of 1/K (an untrained classifier starts there), or a loss
# (accuracy) within 3 % of log K (1/K) at every epoch.  K up to 20 (10 for a flat level alone).
MAX_INFERRED_CLASSES = 20
MAX_FLAT_CLASSES = 10  # a flat level alone is weaker evidence: 1/K and log K crowd together past 10
CHANCE_LOSS_MATCH = 0.1
CHANCE_ACCURACY_MATCH = 0.2
FLAT_CHANCE_MATCH = 0.03
# Series whose NaN or infinity means the run broke down: the losses and the gradient
# statistics.  A metric that is NaN (a Dice score on an empty mask, an undefined precision)
# is a metric the logger could not compute, not the model breaking down (CRITERIA.md, diverged:
# "any loss value ... is NaN or infinite").
BREAKDOWN_MARKERS = ("loss", "grad_norm", "update_ratio")
# The loss a run minimises: training computes it at every step, so it is never a column left
# unfilled (a validation loss, a head or a metric can be).
MINIMISED = ("loss",)
# Series for which zero at every epoch is a measurement, not an empty column: no dead units.
ZERO_IS_A_VALUE = ("dead_fraction",)


def curve_features(
    history: History,
    *,
    task: str | None = None,
    n_classes: int | None = None,
    loss_name: str | None = None,
    planned_epochs: int | None = None,
    hidden_width: int | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """All features of a history, as flat ``curve.*`` facts (absent when not measurable).

    Args:
        history: the run's per-epoch series.
        task, n_classes: the task, when the history does not carry it (sets chance level).
        loss_name: the plan's loss; chance loss is only defined for cross-entropy.
        planned_epochs: the plan's epochs, to tell an early stop from a full run.
        hidden_width: the narrowest hidden layer of the model (an MLP's units), from the
            plan: a curve of a net too narrow for its classes looks like a slow one.
        thresholds: ``threshold.*`` values of the rules in use (the built-in ones when
            None), for the measures that need one while they count (rounding, noise).
    """
    task = history.task or task
    n_classes = history.n_classes or n_classes
    thresholds = built_in_thresholds() if thresholds is None else thresholds
    history, dropped = drop_never_computed(history)
    history = _accuracy_as_fraction(history)
    epochs = np.asarray(history.epochs, dtype=float)
    out: dict[str, Any] = {
        "curve.n_epochs": len(history.epochs),
        "curve.first_epoch": int(history.epochs[0]) if history.epochs else None,
        "curve.last_epoch": int(history.epochs[-1]) if history.epochs else None,
        # a validation loss logged at fewer epochs than a shape needs (once, at the end of a
        # run validated only then) is no curve to watch: the run is judged on the training loss
        "curve.has_val": len(_values(history, "val_loss")) >= MIN_EPOCHS_FOR_SHAPE,
        "curve.has_loss": any(name in history.series for name in LOSS_SERIES),
        "curve.loss_epochs": _loss_epochs(history),
    }
    if dropped:
        out["curve.never_computed"] = ", ".join(dropped)
    window = max(MIN_WINDOW, round(WINDOW_FRACTION * len(history.epochs)))
    out["curve.window"] = window
    if len(history.epochs) > window:
        out["curve.window_start"] = int(history.epochs[-window])
    if planned_epochs is not None and history.epochs:
        out["curve.planned_epochs"] = planned_epochs
        out["curve.stopped_early"] = history.epochs[-1] < planned_epochs
    if hidden_width is not None:
        out["curve.hidden_width"] = hidden_width
    out.update(_nonfinite(history))
    raised = lr_raises(history.epochs, history.series.get("lr", []))
    if "lr" in history.series:
        out["curve.lr.raises"] = len(raised)
        out["curve.lr.moved_since_best"] = _lr_moved_since_best(history)
    if task == "gan" or {"d_loss", "g_loss"} <= set(history.series):
        # a two-player game, not a descent: the loss shapes below do not apply
        out.update(gan_features(history.series, window))
        out.update(_gradient_features(history, out.get("curve.nonfinite_epoch")))
        return {key: _plain(value) for key, value in out.items() if value is not None}
    k, how = infer_classes(history, task, n_classes, loss_name)
    if k is not None:
        out["curve.classes"] = k
        out["curve.chance_source"] = how
    chance = math.log(k) if k is not None and _is_cross_entropy(loss_name) else None
    for name in LOSS_SERIES:
        if name in history.series:
            x, y = _finite_prefix(epochs, history.series[name])
            out.update(_loss_features(name, x, y, window, chance, raised, thresholds))
    main = _main_series(out)
    out.update(
        {
            "curve.main." + key.removeprefix(f"curve.{main}."): value
            for key, value in list(out.items())
            if key.startswith(f"curve.{main}.")
        }
    )
    for name in ("accuracy", "val_accuracy", "r2", "val_r2"):
        if name in history.series:
            x, y = _finite_prefix(epochs, history.series[name])
            out.update(_score_features(name, x, y, window))
    out.update(_gap_features(history, epochs, out, window))
    out.update(_chance_features(k, chance, out, history))
    out.update(_gradient_features(history, out.get("curve.nonfinite_epoch")))
    return {key: _plain(value) for key, value in out.items() if value is not None}


def infer_classes(
    history: History, task: str | None, n_classes: int | None, loss_name: str | None = None
) -> tuple[int | None, str | None]:
    """The K of chance level, and how it was found: ``given`` (task and classes from the
    history, the plan or the command line), ``metric_names`` (a binary-only metric such as
    AUC or a binary loss name), ``accuracy_and_loss`` (accuracy near 1/K where the loss is
    near log K), ``flat_loss`` (a loss that sat at log K all run) or ``flat_accuracy``
    (an accuracy that sat at 1/K all run).  (None, None) for regression or when nothing
    points to a K.
    """
    if task == "regression":
        return None, None
    given = _classes(task, n_classes)
    if given is not None:
        return given, "given"
    if any(name in history.series for name in BINARY_SERIES) or loss_name == "binary_crossentropy":
        return 2, "metric_names"
    if loss_name is not None and not _is_cross_entropy(loss_name):
        return None, None  # the loss says nothing of K, and without K no accuracy level either
    if "r2" in history.series or "val_r2" in history.series:
        return None, None
    loss = _values(history, "loss") or _values(history, "val_loss")
    accuracy = _values(history, "accuracy") or _values(history, "val_accuracy")
    both = [
        (abs(loss[0] / math.log(k) - 1), k)
        for k in range(2, MAX_INFERRED_CLASSES + 1)
        if loss
        and accuracy
        and abs(loss[0] / math.log(k) - 1) <= CHANCE_LOSS_MATCH
        and abs(accuracy[0] - 1 / k) <= CHANCE_ACCURACY_MATCH / k
    ]
    if both:
        return min(both)[1], "accuracy_and_loss"
    for k in range(2, MAX_FLAT_CLASSES + 1):
        if len(loss) >= 2 and all(abs(v / math.log(k) - 1) <= FLAT_CHANCE_MATCH for v in loss):
            return k, "flat_loss"
        if len(accuracy) >= 2 and all(abs(v - 1 / k) <= FLAT_CHANCE_MATCH / k for v in accuracy):
            return k, "flat_accuracy"
    return None, None


def _lr_moved_since_best(history: History) -> bool | None:
    """Whether the recorded learning rate ends more than LR_RISE away from where it stood when
    the training loss was at its best: a loss that rises after the schedule cut the rate, or
    raised it again (a warm restart), is not a fixed rate's doing."""
    pairs = [
        (lr, loss)
        for lr, loss in zip(history.series["lr"], history.series.get("loss", []), strict=False)
        if lr is not None and loss is not None and math.isfinite(lr) and math.isfinite(loss)
    ]
    if len(pairs) < 2:
        return None
    at_best = min(pairs, key=lambda pair: pair[1])[0]
    return abs(pairs[-1][0] - at_best) > LR_RISE * abs(at_best)


def _main_series(out: dict[str, Any]) -> str:
    """The curve the run is judged on: the training loss, or the validation loss when there
    is no training loss or it was logged at too few epochs to have a shape while the
    validation loss has more (a train loss logged twice in a run validated every epoch)."""
    n_train = out.get("curve.loss.epochs", 0)
    n_val = out.get("curve.val_loss.epochs", 0)
    if n_train == 0 or (n_train < MIN_EPOCHS_FOR_SHAPE and n_val > n_train):
        return "val_loss"
    return "loss"


def drop_never_computed(history: History) -> tuple[History, list[str]]:
    """The history without its never-computed series, and their names: a series NaN,
    infinite, empty or exactly zero at every epoch (a validation column of a run without a
    validation set) was not logged, so it is left out rather than read as a breakdown
    (tests/corpus/CRITERIA.md, notation).  Not when the loss the run minimises is itself non-finite at
    every epoch: training computes it at every step, so the run broke down in its first
    epoch (the engine stops there), and its other NaN columns are that breakdown too."""
    broke = any(
        any(v is not None and not math.isfinite(v) for v in values)
        and all(v is None or not math.isfinite(v) for v in values)
        for name, values in history.series.items()
        if name in MINIMISED
    )
    dropped = [
        name
        for name, values in history.series.items()
        if all(v is None or (v == 0.0 and name not in ZERO_IS_A_VALUE) for v in values)
        or (
            not broke
            and all(
                v is None or not math.isfinite(v) or (v == 0.0 and name not in ZERO_IS_A_VALUE)
                for v in values
            )
        )
    ]
    if not dropped:
        return history, []
    series = {name: values for name, values in history.series.items() if name not in dropped}
    return history.model_copy(update={"series": series}), dropped


def _values(history: History, name: str) -> list[float]:
    return [v for v in history.series.get(name, []) if v is not None and math.isfinite(v)]


def _loss_epochs(history: History) -> int:
    """Epochs at which some loss (training or validation) has a value."""
    columns = [history.series[name] for name in LOSS_SERIES if name in history.series]
    return sum(any(col[i] is not None for col in columns) for i in range(len(history.epochs)))


def _accuracy_as_fraction(history: History) -> History:
    """Accuracies logged in percent (any value above 1.5) as fractions of one."""
    series = dict(history.series)
    changed = False
    for name in ("accuracy", "val_accuracy"):
        values = _values(history, name)
        if values and max(values) > 1.5 and max(values) <= 100.0:
            series[name] = [v / 100.0 if v is not None else None for v in series[name]]
            changed = True
    return history.model_copy(update={"series": series}) if changed else history


# ----------------------------------------------------------------------------- helpers


def _plain(value: Any) -> Any:
    """numpy scalars -> Python numbers; infinite ratios -> the cap."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return None
        return max(-CAP, min(CAP, value))
    return value


def _finite_prefix(epochs: np.ndarray, values: list[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """Epochs and values that are present, up to the first NaN or infinity."""
    x, y = [], []
    for epoch, value in zip(epochs, values, strict=True):
        if value is None:
            continue
        if not math.isfinite(value):
            break
        x.append(epoch)
        y.append(value)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def _nonfinite(history: History) -> dict[str, Any]:
    """Where any loss or gradient statistic first became NaN or infinite (a metric's NaN is
    not a breakdown), which series did, and the last finite values of the losses before it."""
    first, which = None, None
    for name, values in history.series.items():
        if not any(marker in name for marker in BREAKDOWN_MARKERS):
            continue
        for epoch, value in zip(history.epochs, values, strict=False):
            if value is not None and not math.isfinite(value):
                if first is None or epoch < first:
                    first, which = epoch, name
                break
    out: dict[str, Any] = {"curve.nonfinite": first is not None}
    if first is None:
        return out
    out["curve.nonfinite_epoch"] = first
    out["curve.nonfinite_series"] = which
    before = [i for i, e in enumerate(history.epochs) if e < first]
    if before:
        out["curve.last_finite_epoch"] = int(history.epochs[before[-1]])
    for name in LOSS_SERIES:
        kept = [history.series.get(name, [None] * len(history.epochs))[i] for i in before]
        kept = [v for v in kept if v is not None]
        if kept:
            out[f"curve.{name}.last_finite"] = float(kept[-1])
    return out


# ----------------------------------------------------------------------------- loss curves


def _loss_features(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    window: int,
    chance: float | None,
    raised: frozenset[int],
    thresholds: Mapping[str, float],
) -> dict[str, Any]:
    """Level, best, trends, noise, jumps and plateaus of a curve where lower is better.

    ``chance`` (the loss of guessing, when known) sets the scale below which wobble
    and jumps are damped: a loss far below guessing may flicker harmlessly.  ``raised``
    are the epochs at which the schedule raised the learning rate: the moves it made
    there are left out of the jumps and backtracking, and the rise from the lowest level
    counts from the last of them, so a warm restart is not read as instability.
    A move no larger than the log's rounding (``threshold.rounding_units`` units of its last
    printed decimal) or under ``threshold.noise_share`` of the curve's first-minus-best range
    is neither a rise nor a jump (tests/corpus/CRITERIA.md, notation and lr_too_high).
    """
    p = f"curve.{name}."
    n = len(y)
    if n == 0:
        return {}
    best = int(np.argmin(y))
    first, final = float(y[0]), tail_mean(y)
    # a best near zero is measured against a hundredth of the start (the median of the first
    # three values: a first epoch far above the rest, the average over the steps from the
    # random init, must not set the scale for the whole run)
    level = max(abs(float(y[best])), 0.01 * abs(float(np.median(y[:3]))), 1e-12)
    unit = rounding_unit(y)
    rounding = thresholds["threshold.rounding_units"] * unit * (1 + 1e-9)
    low = float(y[best])
    # how far the last value ends above the best, as a reader takes it: relative to the best
    # itself, a move within the log's rounding being none (CRITERIA.md, notation)
    excess = float(y[-1]) - low
    excess = excess if excess > rounding else 0.0
    out: dict[str, Any] = {
        p + "first": first,
        p + "final": float(y[-1]),
        p + "best": float(y[best]),
        p + "best_epoch": int(x[best]),
        p + "worst": float(y.max()),
        p + "end_over_best": excess / low if low > 0 else None,
        p + "end_rise_share": excess / (first - low) if first > low else None,
        p + "epochs_since_best": int(x[-1] - x[best]),
        p + "rel_drop": (first - float(y[best])) / max(abs(first), 1e-12),
        p + "rise_from_best": (final - float(y[best])) / level,
        p + "final_over_first": final / first if first > 0 else None,
        p + "epochs": n,
        p + "rounding_unit": unit,
        p + "still_rising": still_rising(y),
    }
    out.update({p + key: value for key, value in tail_progress(y).items()})
    out[p + "sustained_rise"] = sustained_rise(y)
    if n < MIN_EPOCHS_FOR_SHAPE:
        return out
    z, is_log = log_space(y)
    s = smooth(z)
    scale = max(float(np.ptp(s)), 1e-12)
    k = min(window, n - 1)
    diffs = np.diff(y)
    own = ~scheduled_moves(x, raised)  # the moves the optimiser made, not the schedule
    moves = np.abs(diffs[own])
    # rises beyond the log's rounding and the curve's noise: the only ones counted as rises
    least = max(rounding, thresholds["threshold.noise_share"] * max(first - low, 0.0))
    up = np.where(diffs > least, diffs, 0.0)
    damping = FLOOR_SHARE * max(float(np.ptp(y)), chance or 0.0)
    jumps = up[own] / (np.abs(y[:-1][own]) + damping + 1e-12)
    rises = up / (np.abs(y[:-1]) + JUMP_FLOOR * float(np.ptp(y[1:])) + 1e-12)
    # moves into an epoch after the run's first fifth: the early phase, where a large step
    # can throw the loss up once before the curvature adapts (the catapult), is left out
    late = own & (np.arange(1, n) >= math.ceil(EARLY_FRACTION * n))
    last_raise = max((i for i, e in enumerate(x) if int(e) in raised), default=0)
    out.update(
        {
            p + "rise_from_best": rise(s, is_log, level, RISE_FLOOR * (chance or 0.0)),
            p + "recent_improvement": recent(z, k, is_log, scale),
            p + "recent_share": share(y, k),
            p + "noise": noise(z),
            p + "wobble": noise(np.log(y + damping) if is_log else y),
            p + "oscillation": sign_changes(diffs, level),
            p + "backtrack": float(up[own].sum() / moves.sum()) if moves.sum() > 0 else 0.0,
            p + "max_jump": float(jumps.max()) if len(jumps) else 0.0,
            p + "rise_share": float(np.mean(up[own] > 0)) if own.any() else 0.0,
            p + "max_rise": float(rises[own].max()) if own.any() else 0.0,
            p + "late_max_rise": float(rises[late].max()) if late.any() else 0.0,
            p + "late_max_jump": float((up[late] / (np.abs(y[:-1][late]) + damping + 1e-12)).max())
            if late.any()
            else 0.0,
            # relative to the value plus FLOOR_SHARE of the curve's own range (not of the chance
            # loss): a near-zero loss that zig-zags by its own size is still moving a lot
            p + "median_move": float(
                np.median(
                    np.abs(diffs[own])
                    / (np.abs(y[:-1][own]) + FLOOR_SHARE * float(np.ptp(y)) + 1e-12)
                )
            )
            if own.any()
            else 0.0,
            p + "rise_from_min": rise_from_min(y, damping, last_raise),
            p + "linearity": r_squared(x, y),
            p + "deceleration": deceleration(s),
        }
    )
    out.update({p + key: value for key, value in stall(x, s, is_log).items()})
    return out


# ----------------------------------------------------------------------------- scores, gap, chance


def _score_features(name: str, x: np.ndarray, y: np.ndarray, window: int) -> dict[str, Any]:
    """Final and best of a curve where higher is better (accuracy, r2)."""
    if len(y) == 0:
        return {}
    p = f"curve.{name}."
    best = int(np.argmax(y))
    k = min(window, len(y) - 1)
    return {
        p + "first": float(y[0]),
        p + "final": tail_mean(y),
        p + "best": float(y[best]),
        p + "best_epoch": int(x[best]),
        p + "drop_from_best": float(y[best] - tail_mean(y)),
        p + "recent_gain": float(y[-1] - y[-1 - k]) if k > 0 else None,
        p + "max_gain": float(np.diff(y).max()) if len(y) > 1 else None,
        p + "frozen_epochs": frozen_epochs(y),
    }


def frozen_epochs(y: np.ndarray) -> int:
    """How many epochs at the end hold exactly the last value (an accuracy whose predictions
    no longer change on any example: on a fixed set it repeats to the last digit)."""
    same = np.abs(y - y[-1]) <= 1e-9 * max(1.0, abs(float(y[-1])))
    changed = np.flatnonzero(~same)
    return int(len(y) - 1 - changed[-1]) if len(changed) else len(y)


def _gap_features(history: History, epochs: np.ndarray, out: dict, window: int) -> dict[str, Any]:
    """The generalization gap (validation minus training loss) and how it grew."""
    if "loss" not in history.series or "val_loss" not in history.series:
        return {}
    pairs = [
        (e, t, v)
        for e, t, v in zip(epochs, history.series["loss"], history.series["val_loss"], strict=True)
        if t is not None and v is not None and math.isfinite(t) and math.isfinite(v)
    ]
    if len(pairs) < 2:
        return {}
    e, t, v = (np.asarray(col, dtype=float) for col in zip(*pairs, strict=True))
    best = int(np.argmin(v))
    level = max(abs(float(v[best])), 1e-12)
    gap = v - t
    final_gap = float(np.mean(gap[-3:]))
    middle = len(gap) // 2
    middle_gap = float(np.mean(gap[max(0, middle - 1) : middle + 2]))
    result = {
        "curve.gap.final": final_gap / max(abs(float(np.mean(v[-3:]))), 1e-12),
        "curve.gap.at_val_best": float(gap[best]) / level,
        "curve.gap.growth": (final_gap - middle_gap) / level,
    }
    if best < len(t) - 1:
        # how far L went on falling after V's best, to its last value (CRITERIA.md, rule 5)
        t_best = max(abs(float(t[best])), 1e-12)
        result["curve.loss.change_after_val_best"] = (float(t[-1]) - float(t[best])) / t_best
    # The gap as a reader takes it off the last epoch: (V - L) / L, and its growth since
    # V's best epoch relative to the gap there.
    end_gap = float(gap[-1])
    result["curve.gap.over_train"] = end_gap / max(abs(float(t[-1])), 1e-12)
    if abs(float(gap[best])) > 1e-12:
        result["curve.gap.growth_since_best"] = (end_gap - float(gap[best])) / abs(float(gap[best]))
    if "curve.accuracy.final" in out and "curve.val_accuracy.final" in out:
        result["curve.gap.accuracy"] = out["curve.accuracy.final"] - out["curve.val_accuracy.final"]
    return result


def _classes(task: str | None, n_classes: int | None) -> int | None:
    """The K of chance level: 2 for binary (and per label for multilabel), n_classes otherwise."""
    if task not in ("binary", "multiclass", "multilabel"):
        return None
    k = 2 if task in ("binary", "multilabel") else n_classes
    return k if k and k >= 2 else None


def _is_cross_entropy(loss_name: str | None) -> bool:
    """Unknown losses are taken for cross-entropy (what a classifier's history nearly always is)."""
    return loss_name is None or loss_name in CROSS_ENTROPY_LOSSES


def chance_loss(task: str | None, n_classes: int | None, loss_name: str | None) -> float | None:
    """Cross-entropy of a uniform guess, log K; None when the loss is not a cross-entropy."""
    k = _classes(task, n_classes)
    if k is None or not _is_cross_entropy(loss_name):
        return None
    return math.log(k)


def _chance_features(
    k: int | None, chance: float | None, out: dict, history: History
) -> dict[str, Any]:
    """Distance from chance level: loss / log K for cross-entropy, skill above 1/K for accuracy."""
    if k is None:
        return {}
    result: dict[str, Any] = {"curve.chance_accuracy": 1.0 / k}
    for name in ("accuracy", "val_accuracy"):
        if f"curve.{name}.final" in out:
            final = out[f"curve.{name}.final"]
            result[f"curve.{name}.skill"] = (final - 1 / k) / (1 - 1 / k)
            result[f"curve.{name}.chance_margin"] = final - 1 / k
    if chance is not None:
        result["curve.chance_loss"] = chance
        for name in (*LOSS_SERIES, "main"):
            if f"curve.{name}.best" in out:
                series = _main_series(out) if name == "main" else name
                x, y = _finite_prefix(np.asarray(history.epochs, float), history.series[series])
                result[f"curve.{name}.chance_ratio"] = tail_mean(y) / chance
                result[f"curve.{name}.peak_chance_ratio"] = float(y.max()) / chance
                if len(y) > 1:  # the first epoch averages the steps taken from the random init
                    result[f"curve.{name}.later_peak_chance_ratio"] = float(y[1:].max()) / chance
    return result


def _gradient_features(history: History, stop: int | None) -> dict[str, Any]:
    """Gradient norms, layer ratio, update/weight ratio and dead-unit share, where recorded.

    Only epochs before ``stop`` (the first NaN) count: a network of NaN weights has
    no meaningful dead units or update sizes.
    """
    out: dict[str, Any] = {}
    keep = [i for i, e in enumerate(history.epochs) if stop is None or e < stop]

    def values(name: str) -> list[float | None]:
        series = history.series.get(name, [])
        return [series[i] for i in keep] if series else []

    raw = [v for v in history.series.get("grad_norm", []) if v is not None]
    if raw:
        out["curve.grad_norm.nonfinite"] = any(not math.isfinite(v) for v in raw)
    norms = np.asarray([v for v in values("grad_norm") if v is not None and math.isfinite(v)])
    if len(norms):
        k = max(1, len(norms) // 5)
        out.update(
            {
                "curve.grad_norm.median": float(np.median(norms)),
                "curve.grad_norm.max": float(norms.max()),
                "curve.grad_norm.final": float(np.mean(norms[-k:])),
                "curve.grad_norm.spike": spike(norms),
                "curve.grad_norm.growth": float(
                    np.mean(norms[-k:]) / max(np.mean(norms[:k]), 1e-30)
                ),
            }
        )
    ratios = [
        a / b
        for a, b in zip(values("grad_norm_first"), values("grad_norm_last"), strict=False)
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and b > 0
    ]
    if ratios:
        out["curve.grad_norm.layer_ratio"] = float(np.median(ratios))
    for name, feature in (("update_ratio", "median"), ("dead_fraction", "final")):
        found = np.asarray([v for v in values(name) if v is not None and math.isfinite(v)])
        if len(found):
            value = np.median(found) if feature == "median" else np.mean(found[-3:])
            out[f"curve.{name}.{feature}"] = float(value)
            out[f"curve.{name}.max"] = float(found.max())
    return out
