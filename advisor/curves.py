"""Curve features of a training history, computed once, for the diagnosis rules.

Every feature is a fact named ``curve.<series>.<feature>`` (``curve.loss.noise``,
``curve.val_loss.rise_from_best``) or ``curve.<name>`` for the run as a whole
(``curve.gap.growth``, ``curve.chance_loss``); their meanings are declared in
``advisor.vocabulary.CURVE_FACTS``.  This module only measures: the thresholds
that turn a measurement into a problem live in ``rules/50_*.toml``.  numpy only.

Loss-like curves are studied in log space where they are positive, because
training losses fall roughly geometrically: there a steady decay is a straight
line, and noise and flatness are relative changes, free of the loss's scale.
Trends are read from a local linear smoothing; noise from second differences.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from advisor.schemas import History

WINDOW_FRACTION = 0.2  # "recent" = the last fifth of the run, at least MIN_WINDOW epochs
MIN_WINDOW = 3
SMOOTH_HALF_WIDTH = 2  # local linear fit over 5 epochs
FLAT_TOLERANCE = 0.02  # a stretch is flat when its smoothed curve moves less than 2 %
FLAT_PACE = 0.3  # ... and less than 30 % of what the run's average pace would move it
# Wobble and jumps are relative to the value plus a tenth of the curve's range or of the
# chance-level loss, whichever is larger: near zero a loss flickers by large fractions harmlessly.
FLOOR_SHARE = 0.1
RISE_FLOOR = 0.02  # the rise from the best is relative to the best plus 2 % of the chance loss
MIN_EPOCHS_FOR_SHAPE = 4  # fewer points than this carry no trend or noise information
CROSS_ENTROPY_LOSSES = (
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)
LOSS_SERIES = ("loss", "val_loss")
_CAP = 1e6  # ratios are capped so that facts stay finite numbers


def curve_features(
    history: History,
    *,
    task: str | None = None,
    n_classes: int | None = None,
    loss_name: str | None = None,
    planned_epochs: int | None = None,
) -> dict[str, Any]:
    """All features of a history, as flat ``curve.*`` facts (absent when not measurable).

    Args:
        history: the run's per-epoch series.
        task, n_classes: the task, when the history does not carry it (sets chance level).
        loss_name: the plan's loss; chance loss is only defined for cross-entropy.
        planned_epochs: the plan's epochs, to tell an early stop from a full run.
    """
    task = history.task or task
    n_classes = history.n_classes or n_classes
    epochs = np.asarray(history.epochs, dtype=float)
    out: dict[str, Any] = {
        "curve.n_epochs": len(history.epochs),
        "curve.first_epoch": int(history.epochs[0]) if history.epochs else None,
        "curve.last_epoch": int(history.epochs[-1]) if history.epochs else None,
        "curve.has_val": "val_loss" in history.series,
    }
    window = max(MIN_WINDOW, round(WINDOW_FRACTION * len(history.epochs)))
    out["curve.window"] = window
    if len(history.epochs) > window:
        out["curve.window_start"] = int(history.epochs[-window])
    if planned_epochs is not None and history.epochs:
        out["curve.planned_epochs"] = planned_epochs
        out["curve.stopped_early"] = history.epochs[-1] < planned_epochs
    out.update(_nonfinite(history))
    chance = chance_loss(task, n_classes, loss_name)
    for name in LOSS_SERIES:
        if name in history.series:
            x, y = _finite_prefix(epochs, history.series[name])
            out.update(_loss_features(name, x, y, window, chance))
    for name in ("accuracy", "val_accuracy", "r2", "val_r2"):
        if name in history.series:
            x, y = _finite_prefix(epochs, history.series[name])
            out.update(_score_features(name, x, y, window))
    out.update(_gap_features(history, epochs, out, window))
    out.update(_chance_features(task, n_classes, loss_name, out, history))
    out.update(_gradient_features(history, out.get("curve.nonfinite_epoch")))
    return {key: _plain(value) for key, value in out.items() if value is not None}


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
        return max(-_CAP, min(_CAP, value))
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
    """Where a loss first became NaN or infinite."""
    first = None
    for name in (*LOSS_SERIES, "grad_norm"):
        for epoch, value in zip(history.epochs, history.series.get(name, []), strict=False):
            if value is not None and not math.isfinite(value):
                first = epoch if first is None else min(first, epoch)
                break
    out: dict[str, Any] = {"curve.nonfinite": first is not None}
    if first is not None:
        out["curve.nonfinite_epoch"] = first
    return out


def smooth(y: np.ndarray, half_width: int = SMOOTH_HALF_WIDTH) -> np.ndarray:
    """Local linear fit around each point (Savitzky-Golay of order 1); near the ends the
    window keeps its full width and shifts inward, so the last value is not a lone point."""
    n = len(y)
    width = min(2 * half_width + 1, n)
    if width < 3:
        return y.astype(float).copy()
    out = np.empty(n)
    t = np.arange(width, dtype=float)
    for i in range(n):
        lo = min(max(0, i - half_width), n - width)
        slope, intercept = np.polyfit(t, y[lo : lo + width], 1)
        out[i] = slope * (i - lo) + intercept
    return out


def _log_space(y: np.ndarray) -> tuple[np.ndarray, bool]:
    """log(y) when every value is positive (relative changes), else y itself."""
    if len(y) and np.all(y > 0):
        return np.log(y), True
    return y.copy(), False


def _relative(a: float, b: float, is_log: bool, scale: float) -> float:
    """How much lower b is than a, as a fraction (of a, or of ``scale`` in linear space)."""
    return float(1.0 - math.exp(b - a)) if is_log else float((a - b) / scale)


# ----------------------------------------------------------------------------- loss curves


def _loss_features(
    name: str, x: np.ndarray, y: np.ndarray, window: int, chance: float | None
) -> dict[str, Any]:
    """Level, best, trends, noise, jumps and plateaus of a curve where lower is better.

    ``chance`` (the loss of guessing, when known) sets the scale below which wobble
    and jumps are damped: a loss far below guessing may flicker harmlessly.
    """
    p = f"curve.{name}."
    n = len(y)
    if n == 0:
        return {}
    best = int(np.argmin(y))
    first, final = float(y[0]), _tail_mean(y)
    level = max(abs(float(y[best])), 0.01 * abs(first), 1e-12)
    out: dict[str, Any] = {
        p + "first": first,
        p + "final": float(y[-1]),
        p + "best": float(y[best]),
        p + "best_epoch": int(x[best]),
        p + "worst": float(y.max()),
        p + "epochs_since_best": int(x[-1] - x[best]),
        p + "rel_drop": (first - float(y[best])) / max(abs(first), 1e-12),
        p + "rise_from_best": (final - float(y[best])) / level,
        p + "final_over_first": final / first if first > 0 else None,
    }
    if n < MIN_EPOCHS_FOR_SHAPE:
        return out
    z, is_log = _log_space(y)
    s = smooth(z)
    scale = max(float(np.ptp(s)), 1e-12)
    k = min(window, n - 1)
    diffs = np.diff(y)
    moves = np.abs(diffs)
    damping = FLOOR_SHARE * max(float(np.ptp(y)), chance or 0.0)
    out.update(
        {
            p + "rise_from_best": _rise(s, is_log, level, RISE_FLOOR * (chance or 0.0)),
            p + "recent_improvement": _recent(z, k, is_log, scale),
            p + "recent_share": _share(y, k),
            p + "noise": _noise(z),
            p + "wobble": _noise(np.log(y + damping) if is_log else y),
            p + "oscillation": _sign_changes(diffs, level),
            p + "backtrack": float(diffs.clip(min=0).sum() / moves.sum())
            if moves.sum() > 0
            else 0.0,
            p + "max_jump": float(np.max(diffs / (np.abs(y[:-1]) + damping + 1e-12))),
            p + "rise_from_min": _rise_from_min(y, damping),
            p + "linearity": _r_squared(x, y),
            p + "deceleration": _deceleration(s),
        }
    )
    out.update(_plateau(p, x, s, is_log))
    return out


def _rise(s: np.ndarray, is_log: bool, level: float, floor: float) -> float:
    """How far the smoothed curve ends above its lowest point, as a fraction of that point
    plus ``floor`` (a validation loss of 0.004 that bumps to 0.005 has not really risen)."""
    if is_log:
        low, end = math.exp(float(s.min())), math.exp(float(s[-1]))
        return float((end - low) / (low + floor))
    return float((s[-1] - s.min()) / level)


def _tail_mean(y: np.ndarray) -> float:
    """Mean of the last (up to) three values: the final level, less its noise."""
    return float(np.mean(y[-3:]))


def _rise_from_min(y: np.ndarray, damping: float) -> float:
    """How far the level at the end (median of the last 3) is above the lowest level held
    (trailing medians of 3), relative to that level plus ``damping``: a single lucky epoch
    is not a level, and a loss near zero that creeps up is not running away."""
    level = _trailing_median(y)
    low = float(level.min())
    return float((level[-1] - low) / max(low + damping, 1e-12))


def _noise(z: np.ndarray) -> float:
    """Epoch-to-epoch wobble: robust std of second differences, scaled to one point's noise.

    For white noise of std sigma a second difference has std sigma * sqrt(6); the median
    ignores the few points where a smooth curve bends sharply (the knee of a fast decay).
    """
    second = np.diff(z, n=2)
    return float(1.4826 * np.median(np.abs(second)) / math.sqrt(6.0)) if len(second) else 0.0


def _trailing_median(z: np.ndarray) -> np.ndarray:
    """Median of each value and the two before it: a level that ignores one-epoch spikes."""
    return np.array([np.median(z[max(0, i - 2) : i + 1]) for i in range(len(z))])


def _recent(z: np.ndarray, k: int, is_log: bool, scale: float) -> float:
    """How far the curve ends below the lowest level it held before the last k epochs.

    Levels are trailing medians of three, so a spike and its recovery inside the
    window are not mistaken for progress.
    """
    level = _trailing_median(z)
    return _relative(float(level[:-k].min()), float(level[-1]), is_log, scale)


def _share(y: np.ndarray, k: int) -> float | None:
    """Share of the run's whole progress made in its last k epochs (below all before them)."""
    s = smooth(y)
    total = float(s[0] - s.min())
    if total <= 1e-12:
        return None
    return float((s[:-k].min() - s[-1]) / total)


def _sign_changes(diffs: np.ndarray, level: float) -> float:
    """Fraction of consecutive moves that reverse direction (moves under 0.1 % ignored)."""
    signs = np.sign(diffs[np.abs(diffs) > 1e-3 * level])
    if len(signs) < 2:
        return 0.0
    return float(np.mean(signs[1:] != signs[:-1]))


def _r_squared(x: np.ndarray, y: np.ndarray) -> float:
    """How well a straight line explains the curve (1 = a straight line)."""
    total = float(np.sum((y - y.mean()) ** 2))
    if total <= 1e-24:
        return 0.0
    slope, intercept = np.polyfit(x, y, 1)
    return float(1.0 - np.sum((y - (slope * x + intercept)) ** 2) / total)


def _deceleration(s: np.ndarray) -> float | None:
    """Fall rate over the first half / over the second (1 = straight, big = converging)."""
    h = len(s) // 2
    early = (s[0] - s[h]) / h
    late = (s[h] - s[-1]) / (len(s) - 1 - h)
    if early <= 0:
        return None
    return float(early / late) if late > 0 else _CAP


def _plateau(p: str, x: np.ndarray, s: np.ndarray, is_log: bool) -> dict[str, Any]:
    """The longest flat stretch before the end and how far the curve fell after it,
    and the flat stretch the run ends on.

    A stretch is flat when its smoothed curve moves less than FLAT_TOLERANCE and
    less than FLAT_PACE of what the run's average pace would move it: a slow
    straight descent is slow, not flat.
    """
    tolerance = (
        math.log1p(FLAT_TOLERANCE) if is_log else FLAT_TOLERANCE * max(float(np.ptp(s)), 1e-12)
    )
    n = len(s)
    pace = abs(float(s[0] - s[-1])) / max(n - 1, 1)
    # The flat stretch starting at i reaches j while max - min of s[i..j] stays within tolerance.
    reach = np.empty(n, dtype=int)
    for i in range(n):
        lo = hi = s[i]
        j = i
        while j + 1 < n:
            allowed = min(tolerance, FLAT_PACE * pace * (j + 1 - i))
            if max(hi, s[j + 1]) - min(lo, s[j + 1]) > allowed:
                break
            j += 1
            lo, hi = min(lo, s[j]), max(hi, s[j])
        reach[i] = j
    out: dict[str, Any] = {}
    final_start = next(i for i in range(n) if reach[i] == n - 1)
    out[p + "final_flat_length"] = int(x[-1] - x[final_start] + 1)
    # A stall is a flat stretch the curve later leaves downward, out of its band; the
    # flat stretch a converged curve ends on is not one.
    stalls = [
        (reach[i] - i, -i)
        for i in range(n)
        if reach[i] < n - 1 and s[reach[i]] - s[reach[i] :].min() > tolerance
    ]
    if stalls:
        _, start = max(stalls)
        start, end = -start, reach[-start]
        out[p + "plateau_length"] = int(x[end] - x[start] + 1)
        out[p + "plateau_start"] = int(x[start])
        out[p + "plateau_end"] = int(x[end])
        out[p + "drop_after_plateau"] = _relative(
            s[end], float(s[end:].min()), is_log, max(float(np.ptp(s)), 1e-12)
        )
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
        p + "final": _tail_mean(y),
        p + "best": float(y[best]),
        p + "best_epoch": int(x[best]),
        p + "drop_from_best": float(y[best] - _tail_mean(y)),
        p + "recent_gain": float(y[-1] - y[-1 - k]) if k > 0 else None,
    }


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
        t_best = max(abs(float(t[best])), 1e-12)
        result["curve.loss.change_after_val_best"] = (
            float(np.mean(t[-3:])) - float(t[best])
        ) / t_best
    if "curve.accuracy.final" in out and "curve.val_accuracy.final" in out:
        result["curve.gap.accuracy"] = out["curve.accuracy.final"] - out["curve.val_accuracy.final"]
    return result


def _classes(task: str | None, n_classes: int | None) -> int | None:
    """The K of chance level: 2 for binary (and per label for multilabel), n_classes otherwise."""
    if task not in ("binary", "multiclass", "multilabel"):
        return None
    k = 2 if task in ("binary", "multilabel") else n_classes
    return k if k and k >= 2 else None


def chance_loss(task: str | None, n_classes: int | None, loss_name: str | None) -> float | None:
    """Cross-entropy of a uniform guess, log K; None when the loss is not a cross-entropy."""
    k = _classes(task, n_classes)
    if k is None or (loss_name is not None and loss_name not in CROSS_ENTROPY_LOSSES):
        return None
    return math.log(k)


def _chance_features(
    task: str | None, n_classes: int | None, loss_name: str | None, out: dict, history: History
) -> dict[str, Any]:
    """Distance from chance level: loss / log K for cross-entropy, skill above 1/K for accuracy."""
    k = _classes(task, n_classes)
    if k is None:
        return {}
    result: dict[str, Any] = {"curve.chance_accuracy": 1.0 / k}
    for name in ("accuracy", "val_accuracy"):
        if f"curve.{name}.final" in out:
            result[f"curve.{name}.skill"] = (out[f"curve.{name}.final"] - 1 / k) / (1 - 1 / k)
    chance = chance_loss(task, n_classes, loss_name)
    if chance is not None:
        result["curve.chance_loss"] = chance
        for name in LOSS_SERIES:
            if f"curve.{name}.best" in out:
                x, y = _finite_prefix(np.asarray(history.epochs, float), history.series[name])
                result[f"curve.{name}.chance_ratio"] = _tail_mean(y) / chance
                result[f"curve.{name}.peak_chance_ratio"] = float(y.max()) / chance
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
        out.update({
            "curve.grad_norm.median": float(np.median(norms)),
            "curve.grad_norm.max": float(norms.max()),
            "curve.grad_norm.final": float(np.mean(norms[-k:])),
            "curve.grad_norm.spike": _spike(norms),
            "curve.grad_norm.growth": float(np.mean(norms[-k:]) / max(np.mean(norms[:k]), 1e-30)),
        })
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


def _spike(norms: np.ndarray, lookback: int = 5) -> float:
    """Largest gradient norm relative to the median of the epochs just before it.

    Relative to the recent past, not the whole run: norms that shrink as the loss
    reaches zero make the first epoch the largest without any explosion.
    """
    ratios = [
        norms[t] / max(float(np.median(norms[max(0, t - lookback) : t])), 1e-30)
        for t in range(1, len(norms))
    ]
    return float(max(ratios)) if ratios else 1.0
