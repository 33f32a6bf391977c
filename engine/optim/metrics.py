"""Validation metrics by name: the ``METRICS`` registry and ``metric_fn(name, task)``.

A registered metric is a pure ``jax.numpy`` function ``(outputs, targets) ->
scalar`` (label_f1 and label_auc: one value per label) over a whole validation
set, safe under ``jit``, on one of three canonical forms:

* classes, binary: scores ``[N]`` (logits; positive = score > 0, i.e.
  probability > 0.5) against {0,1} targets ``[N]``;
* classes, multiclass: logits ``[N, K]`` against integer labels ``[N]``;
* values: ``[N, D]`` against ``[N, D]`` (regression), or boxes ``[N, 4]``.

The class metrics (accuracy, auc, f1, precision, recall) tell the two class
forms apart by rank; multiclass f1/precision/recall/auc are macro averages
over the classes present, as scikit-learn computes them.  ``metric_fn(name,
task)`` adapts a task's raw outputs and targets (see the contract: binary
``[N, 1]``, multilabel ``[N, K]`` flattened to one binary problem, i.e. micro
averages (f1_macro and the per-label label_f1/label_auc keep the columns),
multiclass int or one-hot targets, segmentation masks per pixel,
detection ``[N, 4 + K]`` vs ``[N, 5]``) to the canonical form, and refuses
names that do not apply to the task.  Detection's map_50 and map_50_95 take the
outputs as they are (one box, or a grid ``[N, S*S, 5 + K]`` against ``[N, M, 6]``
targets) and rank and match on the host (``engine.nn.average_precision``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from advisor.contract.errors import InputError
from engine.nn.average_precision import COCO_THRESHOLDS
from engine.nn.detection_grid import map_score
from engine.optim.losses import box_iou_terms
from engine.runtime.registry import Registry

MetricFn = Callable[[jax.Array, jax.Array], jax.Array]

METRICS: Registry = Registry("metric")

_CLASS_METRICS = ("accuracy", "auc", "f1", "precision", "recall")
# Multilabel metrics on the label columns ``[N, K]``; label_* give one value per label.
_LABEL_METRICS = ("f1_macro", "label_f1", "label_auc")
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": _CLASS_METRICS,
    "multilabel": _CLASS_METRICS + _LABEL_METRICS + ("f1_micro",),
    "multiclass": _CLASS_METRICS + ("top5_accuracy",),
    "regression": ("mae", "rmse", "r2"),
    "detection": ("mean_iou", "accuracy", "top5_accuracy", "map_50", "map_50_95"),
    "gan": (),
}


def _is_multiclass(outputs: jax.Array, targets: jax.Array) -> bool:
    return outputs.ndim == targets.ndim + 1


def _safe_ratio(numerator: jax.Array, denominator: jax.Array) -> jax.Array:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    return jnp.where(denominator > 0, numerator / jnp.maximum(denominator, 1e-12), 0.0)


# ----------------------------------------------------------------------------- classes


@METRICS.register("accuracy")
def accuracy(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Share of correct predictions: argmax for multiclass, score > 0 for binary."""
    if _is_multiclass(outputs, targets):
        return jnp.mean(jnp.argmax(outputs, axis=-1) == targets)
    return jnp.mean((outputs > 0) == (targets > 0.5))


@METRICS.register("top5_accuracy")
def top5_accuracy(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Share of examples whose label is among the 5 highest logits (all, below 5 classes)."""
    true_logit = jnp.take_along_axis(outputs, targets[:, None], axis=-1)
    rank = jnp.sum(outputs > true_logit, axis=-1)
    return jnp.mean(rank < min(5, outputs.shape[-1]))


def _binary_auc(scores: jax.Array, positive: jax.Array) -> jax.Array:
    """ROC AUC as the Mann-Whitney statistic; tied scores share their mean rank.

    NaN when the set lacks positives or negatives (AUC is undefined there).
    """
    ordered = jnp.sort(scores)
    below = jnp.searchsorted(ordered, scores, side="left")
    upto = jnp.searchsorted(ordered, scores, side="right")
    ranks = (below + upto + 1).astype(jnp.float32) / 2.0  # 1-based mean rank of each tie group
    n_pos = jnp.sum(positive).astype(jnp.float32)
    n_neg = positive.shape[0] - n_pos
    rank_sum = jnp.sum(jnp.where(positive, ranks, 0.0))
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return jnp.where((n_pos > 0) & (n_neg > 0), u / jnp.maximum(n_pos * n_neg, 1.0), jnp.nan)


@METRICS.register("auc")
def auc(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """ROC AUC: binary on scores; multiclass one-vs-rest on softmax, macro over classes."""
    if not _is_multiclass(outputs, targets):
        return _binary_auc(outputs, targets > 0.5)
    probs = jax.nn.softmax(outputs, axis=-1)
    classes = jnp.arange(outputs.shape[-1])
    per_class = jax.vmap(lambda c: _binary_auc(probs[:, c], targets == c))(classes)
    return jnp.nanmean(per_class)


def _confusion(outputs: jax.Array, targets: jax.Array) -> tuple[jax.Array, ...]:
    """True positives, predicted positives, actual positives: ``[]`` binary, ``[K]`` multiclass."""
    if _is_multiclass(outputs, targets):
        n_classes = outputs.shape[-1]
        predicted = jax.nn.one_hot(jnp.argmax(outputs, axis=-1), n_classes, dtype=jnp.float32)
        actual = jax.nn.one_hot(targets, n_classes, dtype=jnp.float32)
        return (
            jnp.sum(predicted * actual, axis=0),
            jnp.sum(predicted, axis=0),
            jnp.sum(actual, axis=0),
        )
    predicted = (outputs > 0).astype(jnp.float32)
    actual = (targets > 0.5).astype(jnp.float32)
    return jnp.sum(predicted * actual), jnp.sum(predicted), jnp.sum(actual)


def _macro(per_class: jax.Array, predicted: jax.Array, actual: jax.Array) -> jax.Array:
    """Mean over the classes that occur in the targets or the predictions."""
    present = (predicted + actual) > 0
    n_present = jnp.sum(present.astype(jnp.float32))
    return jnp.sum(jnp.where(present, per_class, 0.0)) / jnp.maximum(n_present, 1.0)


@METRICS.register("precision")
def precision(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Share of predicted positives that are positive (macro over classes for multiclass)."""
    true_pos, predicted, actual = _confusion(outputs, targets)
    return _macro(_safe_ratio(true_pos, predicted), predicted, actual)


@METRICS.register("recall")
def recall(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Share of positives that are predicted positive (macro over classes for multiclass)."""
    true_pos, predicted, actual = _confusion(outputs, targets)
    return _macro(_safe_ratio(true_pos, actual), predicted, actual)


@METRICS.register("f1")
def f1(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Harmonic mean of precision and recall, 2 TP / (predicted + actual positives)."""
    true_pos, predicted, actual = _confusion(outputs, targets)
    return _macro(_safe_ratio(2.0 * true_pos, predicted + actual), predicted, actual)


@METRICS.register("f1_micro")
def f1_micro(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """F1 over every (example, label) decision pooled: the multilabel micro average."""
    return f1(outputs, targets)


# ----------------------------------------------------------------------------- labels


def _label_f1(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    predicted = (outputs > 0).astype(jnp.float32)
    actual = (targets > 0.5).astype(jnp.float32)
    true_pos = jnp.sum(predicted * actual, axis=0)
    return _safe_ratio(2.0 * true_pos, jnp.sum(predicted, axis=0) + jnp.sum(actual, axis=0))


@METRICS.register("label_f1")
def label_f1(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """F1 of each label column ``[K]`` (0 where a label is neither predicted nor present)."""
    return _label_f1(outputs, targets)


@METRICS.register("f1_macro")
def f1_macro(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean of the labels' F1, every label counting once (scikit-learn's average='macro')."""
    return jnp.mean(_label_f1(outputs, targets))


@METRICS.register("label_auc")
def label_auc(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """ROC AUC of each label column ``[K]``; NaN for a label with only one value in the set."""
    return jax.vmap(_binary_auc, in_axes=(1, 1))(outputs, targets > 0.5)


# ----------------------------------------------------------------------------- values


@METRICS.register("mae")
def mae(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean absolute error over every value."""
    return jnp.mean(jnp.abs(outputs - targets))


@METRICS.register("rmse")
def rmse(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Root of the mean squared error over every value."""
    return jnp.sqrt(jnp.mean((outputs - targets) ** 2))


@METRICS.register("r2")
def r2(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Coefficient of determination per target column, averaged over columns.

    A constant column scores 1 if predicted exactly and 0 otherwise (scikit-learn's rule).
    """
    residual = jnp.sum((targets - outputs) ** 2, axis=0)
    total = jnp.sum((targets - jnp.mean(targets, axis=0, keepdims=True)) ** 2, axis=0)
    exact = jnp.where(residual == 0, 1.0, 0.0)
    scores = jnp.where(total > 0, 1.0 - residual / jnp.maximum(total, 1e-30), exact)
    return jnp.mean(scores)


@METRICS.register("mean_iou")
def mean_iou(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean intersection over union of predicted and true boxes ``[N, 4]``."""
    return jnp.mean(box_iou_terms(outputs, targets)[0])


def _host_map(outputs: jax.Array, targets: jax.Array, thresholds: tuple[float, ...]) -> jax.Array:
    """mAP computed on the host (engine.nn.average_precision) inside a jitted evaluation."""

    def host(o, t):
        return map_score(np.asarray(o), np.asarray(t), thresholds)

    return jax.pure_callback(host, jax.ShapeDtypeStruct((), jnp.float32), outputs, targets)


# A ranking over the whole set and a greedy match per image: host numpy, not fixed-shape jnp.
@METRICS.register("map_50")
def map_50(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """COCO mean average precision at IoU 0.5 (PASCAL VOC's criterion), over the classes."""
    return _host_map(outputs, targets, (0.5,))


@METRICS.register("map_50_95")
def map_50_95(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """COCO mean average precision averaged over IoU 0.5, 0.55, ..., 0.95, over the classes."""
    return _host_map(outputs, targets, tuple(float(t) for t in COCO_THRESHOLDS))


_MAP_METRICS = ("map_50", "map_50_95")


# ----------------------------------------------------------------------------- task adapters


def _as_binary(outputs: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
    outputs = outputs.astype(jnp.float32)
    if outputs.shape[-1] == 2 and outputs.size == 2 * targets.size:  # two softmax logits
        outputs = outputs[..., 1] - outputs[..., 0]
    return outputs.reshape(-1), targets.astype(jnp.float32).reshape(-1)


def _as_labels(outputs: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
    n = outputs.shape[0]
    return outputs.astype(jnp.float32).reshape(n, -1), targets.astype(jnp.float32).reshape(n, -1)


def _as_multiclass(outputs: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
    n_classes = outputs.shape[-1]
    if targets.shape == outputs.shape:  # one-hot or soft targets
        targets = jnp.argmax(targets, axis=-1)
    return outputs.astype(jnp.float32).reshape(-1, n_classes), targets.reshape(-1).astype(jnp.int32)


def _as_values(outputs: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
    n = outputs.shape[0]
    return (
        outputs.astype(jnp.float32).reshape(n, -1),
        targets.astype(jnp.float32).reshape(n, -1),
    )


def _one_box_adapter(name: str):
    def adapt(outputs: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
        if outputs.ndim == 3:
            raise InputError(
                f"metrics: {name!r} scores one box an image; a plan with model.grid (several "
                "objects) is scored by map_50 and map_50_95"
            )
        if name == "mean_iou":
            return _as_values(outputs[:, :4], targets[:, :4])
        return _as_multiclass(outputs[:, 4:], targets[:, 4])

    return adapt


def _adapter(name: str, task: str) -> Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
    if task == "detection":
        if name in _MAP_METRICS:
            return lambda outputs, targets: (outputs.astype(jnp.float32), targets)
        return _one_box_adapter(name)
    if task == "multilabel" and name in _LABEL_METRICS:
        return _as_labels
    if task in ("binary", "multilabel"):
        return _as_binary
    if task == "multiclass":
        return _as_multiclass
    return _as_values


def metric_fn(name: str, task: str) -> MetricFn:
    """The named metric, taking the task's raw outputs and targets -> scalar float32."""
    metric = METRICS.get(name)
    allowed = TASK_METRICS.get(task, ())
    if name not in allowed:
        expected = "expected one of " + ", ".join(allowed) if allowed else "it has no metrics"
        raise InputError(f"metrics: {name!r} does not apply to task {task}; {expected}")
    adapt = _adapter(name, task)

    def compute(outputs: jax.Array, targets: jax.Array) -> jax.Array:
        outputs = jnp.asarray(outputs)
        value = metric(*adapt(outputs, jnp.asarray(targets))).astype(jnp.float32)
        # argmax and thresholds turn NaN outputs into some class; the metric must not look fine
        return jnp.where(jnp.any(jnp.isnan(outputs)), jnp.nan, value).astype(jnp.float32)

    return compute
