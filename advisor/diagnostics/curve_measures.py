"""Measures of one curve, as a numpy array: smoothing, noise, trends, rises, stalls.

``advisor.diagnostics.curves`` applies them to a history's series and names the results as
facts; here they are plain functions of arrays, each with the one idea it measures.
Loss-like curves are measured in log space where they are positive (``log_space``):
there a steady geometric decay is a straight line and changes are relative.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

SMOOTH_HALF_WIDTH = 2  # local linear fit over 5 epochs
FLAT_TOLERANCE = 0.02  # a stretch is flat when its smoothed curve moves less than 2 %
FLAT_PACE = 0.3  # ... and less than 30 % of what the run's average pace would move it
CAP = 1e6  # ratios are capped so that facts stay finite numbers
LR_RISE = 0.05  # a recorded learning rate 5 % above the epoch before's was raised by the schedule


def smooth(y: np.ndarray, half_width: int = SMOOTH_HALF_WIDTH) -> np.ndarray:
    """Local linear fit around each point (Savitzky-Golay of order 1); near the ends the
    window keeps its full width and shifts inward, so the last value is not a lone point.

    One pass: the least-squares line of every window comes from running sums."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    width = min(2 * half_width + 1, n)
    if width < 3:
        return y.copy()
    t = np.arange(width, dtype=float)
    t_mean = float(t.mean())
    t_var = float(np.sum((t - t_mean) ** 2))
    windows = np.lib.stride_tricks.sliding_window_view(y, width)  # one row per window start
    means = windows.mean(axis=1)
    slopes = (windows @ (t - t_mean)) / t_var
    starts = np.clip(np.arange(n) - half_width, 0, n - width)
    return slopes[starts] * (np.arange(n) - starts - t_mean) + means[starts]


def log_space(y: np.ndarray) -> tuple[np.ndarray, bool]:
    """log(y) when every value is positive (relative changes), else y itself."""
    if len(y) and np.all(y > 0):
        return np.log(y), True
    return y.copy(), False


def relative(a: float, b: float, is_log: bool, scale: float) -> float:
    """How much lower b is than a, as a fraction (of a, or of ``scale`` in linear space)."""
    return float(1.0 - math.exp(b - a)) if is_log else float((a - b) / scale)


def rise(s: np.ndarray, is_log: bool, level: float, floor: float) -> float:
    """How far the smoothed curve ends above its lowest point, as a fraction of that point
    plus ``floor`` (a validation loss of 0.004 that bumps to 0.005 has not really risen)."""
    if is_log:
        low, end = math.exp(float(s.min())), math.exp(float(s[-1]))
        if low + floor <= 0.0:  # denormal losses underflow to 0 (and floor may be 0)
            return 0.0 if end <= low else math.inf
        return float((end - low) / (low + floor))
    return float((s[-1] - s.min()) / level)


def tail_mean(y: np.ndarray) -> float:
    """Mean of the last (up to) three values: the final level, less its noise."""
    return float(np.mean(y[-3:]))


def tail_progress(y: np.ndarray, share: float = 0.2, least: int = 3) -> dict[str, float]:
    """How much the tail (the last max(3, ceil(n/5)) values) improved on the best value
    before it, relative to that best (``tail_gain``, 0 when it did not), and that improvement
    as a share of the whole run's (``tail_share``): the raw numbers a reader takes off the
    curve, without smoothing."""
    n = len(y)
    k = max(least, math.ceil(share * n))
    if n <= k:
        return {}
    before, tail = float(y[:-k].min()), float(y[-k:].min())
    gain = max(before - tail, 0.0)
    total = float(y[0] - y.min())
    out = {"tail_gain": gain / max(abs(before), 1e-12)}
    out["tail_share"] = gain / total if total > 1e-12 else 0.0
    return out


def rounding_unit(y: np.ndarray, most: int = 12) -> float:
    """One unit of the last decimal the log printed, read off the values: 1e-4 for a loss
    printed as 0.0054, 0 for values written at full float precision (no decimal count up to
    ``most`` fits them all).  A change this small is the log's rounding, not a move."""
    y = np.asarray(y, dtype=float)
    if not len(y):
        return 0.0
    for digits in range(most + 1):
        scaled = y * 10.0**digits
        # float64 keeps ~16 significant digits: the slack grows with the scaled value
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-6 + 1e-14 * np.abs(scaled)):
            return float(10.0**-digits)
    return 0.0


def still_rising(y: np.ndarray, share: float = 0.2, least: int = 3) -> bool | None:
    """Whether the curve is still rising at the end: its last value above the one before it
    and above the first value of the tail (the last max(3, ceil(n/5)) values)."""
    n = len(y)
    k = max(least, math.ceil(share * n))
    if n <= k or n < 2:
        return None
    return bool(y[-1] > y[-2] and y[-1] > y[-k])


def sustained_rise(y: np.ndarray) -> float:
    """How far above its best the curve stayed for at least two epochs after it: the second
    largest rise, relative to the best, among the later epochs whose rise exceeds the curve's
    own epoch-to-epoch noise (median absolute change); 0 when fewer than two such epochs."""
    best = int(np.argmin(y))
    noise_level = float(np.median(np.abs(np.diff(y)))) if len(y) > 1 else 0.0
    above = y[best + 1 :] - y[best]
    rises = np.sort(above[above > noise_level])
    if len(rises) < 2:
        return 0.0
    return float(rises[-2] / max(abs(float(y[best])), 1e-12))


def rise_from_min(y: np.ndarray, damping: float, since: int = 0) -> float:
    """How far the level at the end (median of the last 3) is above the lowest level held
    (trailing medians of 3) from index ``since`` on, relative to that level plus ``damping``:
    a single lucky epoch is not a level, and a loss near zero that creeps up is not running
    away.  ``since`` is the last epoch at which the schedule raised the rate: a level held
    before a warm restart is not one the optimiser lost, nor is a median window that still
    reaches back before it."""
    level = trailing_median(y)
    start = min(since + 2, len(level) - 1) if since > 0 else 0
    low = float(level[start:].min())
    return float((level[-1] - low) / max(low + damping, 1e-12))


def noise(z: np.ndarray) -> float:
    """Epoch-to-epoch wobble: robust std of second differences, scaled to one point's noise.

    For white noise of std sigma a second difference has std sigma * sqrt(6); the median
    ignores the few points where a smooth curve bends sharply (the knee of a fast decay).
    """
    second = np.diff(z, n=2)
    return float(1.4826 * np.median(np.abs(second)) / math.sqrt(6.0)) if len(second) else 0.0


def trailing_median(z: np.ndarray) -> np.ndarray:
    """Median of each value and the two before it: a level that ignores one-epoch spikes."""
    z = np.asarray(z, dtype=float)
    out = z.copy()
    if len(z) >= 2:
        out[1] = 0.5 * (z[0] + z[1])
    if len(z) >= 3:
        out[2:] = np.median(np.stack([z[:-2], z[1:-1], z[2:]]), axis=0)
    return out


def recent(z: np.ndarray, k: int, is_log: bool, scale: float) -> float:
    """How far the curve ends below the lowest level it held before the last k epochs.

    Levels are trailing medians of three, so a spike and its recovery inside the
    window are not mistaken for progress.
    """
    level = trailing_median(z)
    return relative(float(level[:-k].min()), float(level[-1]), is_log, scale)


def share(y: np.ndarray, k: int) -> float | None:
    """Share of the run's whole progress made in its last k epochs (below all before them)."""
    s = smooth(y)
    total = float(s[0] - s.min())
    if total <= 1e-12:
        return None
    return float((s[:-k].min() - s[-1]) / total)


def sign_changes(diffs: np.ndarray, level: float) -> float:
    """Fraction of consecutive moves that reverse direction (moves under 0.1 % ignored)."""
    signs = np.sign(diffs[np.abs(diffs) > 1e-3 * level])
    if len(signs) < 2:
        return 0.0
    return float(np.mean(signs[1:] != signs[:-1]))


def r_squared(x: np.ndarray, y: np.ndarray) -> float:
    """How well a straight line explains the curve (1 = a straight line)."""
    total = float(np.sum((y - y.mean()) ** 2))
    if total <= 1e-24:
        return 0.0
    slope, intercept = np.polyfit(x, y, 1)
    return float(1.0 - np.sum((y - (slope * x + intercept)) ** 2) / total)


def deceleration(s: np.ndarray) -> float | None:
    """Fall rate over the first half / over the second (1 = straight, big = converging)."""
    h = len(s) // 2
    early = (s[0] - s[h]) / h
    late = (s[h] - s[-1]) / (len(s) - 1 - h)
    if early <= 0:
        return None
    return float(early / late) if late > 0 else CAP


def stall(x: np.ndarray, s: np.ndarray, is_log: bool) -> dict[str, Any]:
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
    reach = flat_reach(s, tolerance, FLAT_PACE * pace)
    out: dict[str, Any] = {}
    final_start = int(np.argmax(reach == n - 1))
    out["final_flat_length"] = int(x[-1] - x[final_start] + 1)
    # A stall is a flat stretch the curve later leaves downward, out of its band; the
    # flat stretch a converged curve ends on is not one.  The longest wins, the earliest
    # among equals.
    later_low = np.minimum.accumulate(s[::-1])[::-1]  # min of s[j:] for every j
    left = (reach < n - 1) & (s[reach] - later_low[reach] > tolerance)
    stalls = np.flatnonzero(left)
    if len(stalls):
        start = int(stalls[np.argmax(reach[stalls] - stalls)])
        end = int(reach[start])
        out["plateau_length"] = int(x[end] - x[start] + 1)
        out["plateau_start"] = int(x[start])
        out["plateau_end"] = int(x[end])
        out["drop_after_plateau"] = relative(
            s[end], float(s[end:].min()), is_log, max(float(np.ptp(s)), 1e-12)
        )
    return out


def flat_reach(s: np.ndarray, tolerance: float, rate: float) -> np.ndarray:
    """For each start i, the last index j of the flat stretch s[i..j]: the stretch grows one
    step at a time while its range stays within min(tolerance, rate x its number of steps).

    O(n) for the tolerance bound (two pointers over running max/min queues) plus one
    vectorised step per stretch length that the rate bound still decides.
    """
    n = len(s)
    # Farthest j with max - min of s[i..j] within tolerance; never decreases with i.
    far = np.empty(n, dtype=int)
    highs: deque[int] = deque()
    lows: deque[int] = deque()
    j = -1
    for i in range(n):
        while j + 1 < n:
            top = max(s[highs[0]], s[j + 1]) if highs else s[j + 1]
            bottom = min(s[lows[0]], s[j + 1]) if lows else s[j + 1]
            if top - bottom > tolerance:
                break
            j += 1
            while highs and s[highs[-1]] <= s[j]:
                highs.pop()
            highs.append(j)
            while lows and s[lows[-1]] >= s[j]:
                lows.pop()
            lows.append(j)
        far[i] = j
        if highs and highs[0] == i:
            highs.popleft()
        if lows and lows[0] == i:
            lows.popleft()
    if rate <= 0:  # a curve with no net movement: only the tolerance binds (rate x steps is 0)
        # range > 0 breaks a stretch at once, unless the values are exactly equal
        ends = np.arange(n)
        same = np.concatenate([np.diff(s) == 0, [False]])
        for i in range(n - 2, -1, -1):
            if same[i]:
                ends[i] = ends[i + 1]
        return np.minimum(ends, far)
    # The rate bound only binds while rate x steps < tolerance, and only where the whole
    # tolerance stretch has a range larger than rate x steps.
    reach = far.copy()
    spread = _range_of(s, np.arange(n), far)
    hi, lo = s.copy(), s.copy()
    steps = 1
    active = np.flatnonzero((far > np.arange(n)) & (spread > rate))
    while len(active) and rate * steps < tolerance:
        hi[: n - steps] = np.maximum(hi[: n - steps], s[steps:])
        lo[: n - steps] = np.minimum(lo[: n - steps], s[steps:])
        broken = hi[active] - lo[active] > rate * steps
        reach[active[broken]] = active[broken] + steps - 1
        active = active[~broken]
        steps += 1
        active = active[(active + steps <= far[active]) & (spread[active] > rate * steps)]
    return reach


def _range_of(s: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """max - min of s[starts[k]..ends[k]] for every k (sparse tables, O(n log n))."""
    highs, lows = [s], [s]
    width = 1
    while 2 * width <= len(s):
        highs.append(np.maximum(highs[-1][:-width], highs[-1][width:]))
        lows.append(np.minimum(lows[-1][:-width], lows[-1][width:]))
        width *= 2
    level = np.floor(np.log2(ends - starts + 1)).astype(int)
    span = 1 << level
    top = np.empty(len(starts))
    bottom = np.empty(len(starts))
    for k in np.unique(level):
        at = level == k
        top[at] = np.maximum(highs[k][starts[at]], highs[k][ends[at] - span[at] + 1])
        bottom[at] = np.minimum(lows[k][starts[at]], lows[k][ends[at] - span[at] + 1])
    return top - bottom


def scheduled_moves(epochs: np.ndarray, raised: frozenset[int]) -> np.ndarray:
    """Which epoch-to-epoch moves the learning-rate schedule made: the move into an epoch at
    which the schedule raised the rate (a warm restart, a warmup step) and the move after it,
    since an epoch's loss averages steps taken both before and after the new rate acts."""
    into = np.asarray([int(e) in raised for e in epochs[1:]], dtype=bool)
    after = np.asarray([int(e) in raised for e in epochs[:-1]], dtype=bool)
    return into | after


def lr_raises(epochs: list[int], lr: list[float | None]) -> frozenset[int]:
    """Epochs at which the recorded learning rate rose by more than LR_RISE over the epoch
    before: rises the schedule made by design, not the optimiser's doing."""
    raised = set()
    for i in range(1, min(len(epochs), len(lr))):
        before, now = lr[i - 1], lr[i]
        if before is None or now is None or not (math.isfinite(before) and math.isfinite(now)):
            continue
        if now > before * (1.0 + LR_RISE) and now > 0:
            raised.add(int(epochs[i]))
    return frozenset(raised)


def spike(norms: np.ndarray, lookback: int = 5) -> float:
    """Largest gradient norm relative to the median of the epochs just before it.

    Relative to the recent past, not the whole run: norms that shrink as the loss
    reaches zero make the first epoch the largest without any explosion.
    """
    norms = np.asarray(norms, dtype=float)
    n = len(norms)
    if n < 2:
        return 1.0
    first = range(1, min(lookback, n))
    ratios = [norms[t] / max(float(np.median(norms[:t])), 1e-30) for t in first]
    if n > lookback:
        past = np.median(np.lib.stride_tricks.sliding_window_view(norms[:-1], lookback), axis=1)
        ratios.extend(norms[lookback:] / np.maximum(past, 1e-30))
    return float(max(ratios))
