"""How similar new data is to a base's domain, measured: a score in [0, 1] and its evidence.

``measure_similarity(network, variables, x, y, task)`` runs the frozen base once
over the new training inputs.  ``closeness`` is how near the inputs' statistics
are to those each BatchNorm layer stored (symmetric KL per channel, halved every
``SHIFT_AT_HALF`` nats; no source data needed); ``relevance`` is how well a
cross-validated linear probe on the base's features separates the new labels (a
veto, capped at 1 from ``SEPARABILITY_FULL``).  ``similarity = closeness x
relevance``; docs/transfer.md gives the derivation, the calibration table and
the ways it fails.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from advisor.contract.errors import InputError
from engine.runtime import compiler

# Examples per compiled forward call, and at most this many examples are measured.
CHUNK = 256
MAX_EXAMPLES = 2000
_EPS = 1e-5  # BatchNorm's epsilon: variances below it carry no information
# Calibrated on known-similar / known-different pairs (docs/transfer.md): the shift at which
# closeness is one half, and the probe separability that counts as fully relevant.
SHIFT_AT_HALF = 0.25
SEPARABILITY_FULL = 0.5


@dataclass(frozen=True)
class Similarity:
    """The measured similarity and what it was computed from."""

    score: float
    closeness: float | None  # 2 ** (-shift / SHIFT_AT_HALF); None when the base has no BatchNorm
    shift: float | None  # mean symmetric KL of per-channel input statistics
    relevance: float | None  # min(1, separability / SEPARABILITY_FULL)
    separability: float | None  # probe score above chance, in [0, 1]
    probe_accuracy: float | None  # classification probe accuracy (regression: R^2)
    chance: float | None
    n_examples: int

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _strip(variables: dict) -> dict:
    return {collection: tree["base"] for collection, tree in variables.items() if "base" in tree}


def make_forward(network, variables: dict):
    """``forward(x, weights) -> (features, moments)``: base features and, per BatchNorm layer,
    the weighted sums of its inputs (and squares) with the layer's running statistics."""
    base_vars = _strip(variables)

    def forward(x, weights):
        moments = []

        def record(next_fun, args, kwargs, context):
            if isinstance(context.module, nn.BatchNorm) and context.method_name == "__call__":
                h = args[0].astype(jnp.float32)
                w = weights.reshape((-1,) + (1,) * (h.ndim - 1))
                axes = tuple(range(h.ndim - 1))
                per_example = int(np.prod(h.shape[1:-1]))
                moments.append(
                    {
                        "sum": jnp.sum(h * w, axes),
                        "sumsq": jnp.sum(h * h * w, axes),
                        "count": jnp.sum(weights) * per_example,
                        "mean": context.module.get_variable("batch_stats", "mean"),
                        "var": context.module.get_variable("batch_stats", "var"),
                    }
                )
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(record):
            features = network.base.apply(base_vars, x, train=False)
        return features.reshape(x.shape[0], -1), moments

    return compiler.jit(forward)


def run_base(network, variables: dict, x: np.ndarray) -> tuple[np.ndarray, list[dict]]:
    """Features of every example and the accumulated BatchNorm input moments."""
    forward = make_forward(network, variables)
    n = len(x)
    size = min(n, CHUNK)
    features, totals = [], None
    for start in range(0, n, size):
        index = np.minimum(np.arange(start, start + size), n - 1)
        weights = (np.arange(start, start + size) < n).astype(np.float32)
        f, moments = forward(jnp.asarray(x[index]), jnp.asarray(weights))
        features.append(np.asarray(f)[: min(size, n - start)])
        moments = jax.device_get(moments)
        if totals is None:
            totals = moments
        else:
            for total, m in zip(totals, moments, strict=True):
                for key in ("sum", "sumsq", "count"):
                    total[key] = total[key] + m[key]
    return np.concatenate(features), totals or []


def statistics_shift(moments: list[dict]) -> float | None:
    """Mean over BatchNorm layers of the channel-averaged symmetric KL between the new data's
    input statistics and the layer's running statistics; None without BatchNorm."""
    if not moments:
        return None
    layers = []
    for m in moments:
        mean = m["sum"] / m["count"]
        var = np.maximum(m["sumsq"] / m["count"] - mean**2, 0.0) + _EPS
        ref_mean, ref_var = np.asarray(m["mean"]), np.asarray(m["var"]) + _EPS
        kl = 0.5 * (
            var / ref_var
            + ref_var / var
            - 2.0
            + (mean - ref_mean) ** 2 * (1.0 / var + 1.0 / ref_var)
        )
        layers.append(float(np.mean(kl)))
    return float(np.mean(layers))


def probe_score(
    features: np.ndarray, y: np.ndarray, task: str
) -> tuple[float, float, float] | None:
    """(separability, probe accuracy or R^2, chance) of a cross-validated linear probe; None
    when there are too few examples per class to cross-validate."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if task in ("binary", "multiclass"):
        counts = np.bincount(y)
        folds = int(min(5, counts[counts > 0].min()))
        if folds < 2:
            return None
        chance = float(counts.max() / counts.sum())
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        accuracy = float(
            np.mean(
                cross_val_score(
                    probe, features, y, cv=StratifiedKFold(folds, shuffle=True, random_state=0)
                )
            )
        )
        return float(np.clip((accuracy - chance) / (1.0 - chance), 0.0, 1.0)), accuracy, chance
    if task == "regression" and len(y) >= 10:
        probe = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
        r2 = float(
            np.mean(cross_val_score(probe, features, y, cv=KFold(5, shuffle=True, random_state=0)))
        )
        return float(np.clip(r2, 0.0, 1.0)), r2, 0.0
    return None


def measure_similarity(
    network, variables: dict, x: np.ndarray, y: np.ndarray, task: str
) -> Similarity:
    """Similarity of (x, y) to the base's domain; see the module docstring for the formula.

    Args:
        network: the base's network (its ``base`` part is run).
        variables: the base's variables (params and batch_stats).
        x: new training inputs, scaled as a plan would scale them.
        y: their raw targets (class ids for classification).
        task: the new task (decides the probe).
    """
    if len(x) > MAX_EXAMPLES:  # a fixed, seeded subset keeps the measurement seconds long
        keep = np.sort(np.random.default_rng(0).permutation(len(x))[:MAX_EXAMPLES])
        x, y = x[keep], y[keep]
    features, moments = run_base(network, variables, x)
    shift = statistics_shift(moments)
    closeness = None if shift is None else float(2.0 ** (-shift / SHIFT_AT_HALF))
    probe = probe_score(features, y, task)
    separability, accuracy, chance = probe if probe else (None, None, None)
    relevance = None if separability is None else min(1.0, separability / SEPARABILITY_FULL)
    factors = [f for f in (closeness, relevance) if f is not None]
    if not factors:
        raise InputError(
            "pretrained.similarity: cannot be measured here (the base has no BatchNorm layer and the "
            f"task {task!r} has too few examples per class for a probe); write 'similar' or 'different'"
        )
    return Similarity(
        float(np.prod(factors)), closeness, shift, relevance, separability, accuracy, chance, len(x)
    )
