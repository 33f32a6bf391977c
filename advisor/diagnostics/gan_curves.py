"""Curve features of a GAN history (``d_loss``, ``g_loss``, ``val_fd``, ``val_diversity``).

A GAN's losses are a two-player game, not a descent: the supervised loss
shapes (overfitting, a loss that should fall) do not apply, so
``advisor.diagnostics.curves`` hands a GAN history here instead.  Every feature is a fact
``curve.gan.<name>``; the thresholds that turn them into problems live in
``rules/55_gan.toml``.  numpy only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# The non-saturating objective's discriminator loss when it cannot tell real from fake
# (both logits at 0): softplus(0) on the real and on the fake term, 2 log 2.
D_EQUILIBRIUM = 2.0 * math.log(2.0)


def _finite(values: list[float | None]) -> np.ndarray:
    out = np.asarray([np.nan if v is None else v for v in values], float)
    return out[np.isfinite(out)]


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


def gan_features(series: dict[str, list], window: int) -> dict[str, Any]:
    """``curve.gan.*`` facts: the players' balance, the samples' spread, and the swings."""
    out: dict[str, Any] = {"curve.gan.is_gan": True}
    d_loss, g_loss = _finite(series.get("d_loss", [])), _finite(series.get("g_loss", []))
    if len(d_loss) and len(g_loss):
        out["curve.gan.d_loss.final"] = _mean(d_loss[-window:])
        out["curve.gan.g_loss.final"] = _mean(g_loss[-window:])
        if np.all(d_loss >= 0):  # a log-loss discriminator (a Wasserstein critic goes negative)
            out["curve.gan.d_loss.over_equilibrium"] = _mean(d_loss[-window:]) / D_EQUILIBRIUM
        start = _mean(g_loss[:window])
        if start and start > 0:
            out["curve.gan.g_loss.growth"] = _mean(g_loss[-window:]) / start
    half = len(g_loss) // 2
    if half >= 3:
        out["curve.gan.g_loss.swing"] = _swing(g_loss[half:])
        out["curve.gan.g_loss.reversals"] = _reversals(g_loss[half:])
    diversity = _finite(series.get("val_diversity", []))
    if len(diversity):
        out["curve.gan.diversity.final"] = _mean(diversity[-window:])
        out["curve.gan.diversity.best"] = float(np.max(diversity))
    fd = _finite(series.get("val_fd", []))
    if len(fd):
        out["curve.gan.fd.first"] = float(fd[0])
        out["curve.gan.fd.final"] = _mean(fd[-window:])
        out["curve.gan.fd.best"] = float(np.min(fd))
        if fd[0] > 0:
            out["curve.gan.fd.final_over_first"] = _mean(fd[-window:]) / float(fd[0])
        if len(fd) // 2 >= 3:
            out["curve.gan.fd.swing"] = _swing(fd[len(fd) // 2 :])
    return out


def _swing(values: np.ndarray) -> float:
    """Epoch-to-epoch move relative to the level: mean |diff| / mean |value|."""
    level = float(np.mean(np.abs(values)))
    return float(np.mean(np.abs(np.diff(values)))) / level if level > 0 else 0.0


def _reversals(values: np.ndarray) -> float:
    """Share of consecutive moves that change direction (2/3 for independent noise, 1 zigzag)."""
    moves = np.sign(np.diff(values))
    moves = moves[moves != 0]
    if len(moves) < 2:
        return 0.0
    return float(np.mean(moves[1:] != moves[:-1]))
