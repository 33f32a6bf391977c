"""Metric names as the libraries write them -> the contract's history series names.

Keras writes ``acc`` or ``sparse_categorical_accuracy``, Lightning
``train_loss_step`` / ``val_acc``, Hugging Face ``eval_loss`` / ``learning_rate``,
TensorBoard tags ``epoch_loss`` or ``Loss/train``.  ``normalise`` maps them all to
``loss``, ``val_loss``, ``accuracy``, ``val_accuracy``, ``lr`` ... (the History's names), and
says which granularity a name carries (Lightning's ``_step`` / ``_epoch``
suffixes), so a reader can prefer the per-epoch value.  Bookkeeping columns
(step, runtime, throughput) map to ``None``: they are not series to diagnose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from advisor.contract.vocabulary import DIAGNOSTIC_SERIES

# Phase words -> the prefix the contract uses ("" = training).
_PHASES = {
    "train": "",
    "training": "",
    "trn": "",
    "val": "val_",
    "valid": "val_",
    "validation": "val_",
    "eval": "val_",
    "evaluation": "val_",
    "dev": "val_",
    "test": "test_",
}

# Metric spellings -> contract metric names.
_ALIASES = {
    "loss": "loss",
    "losses": "loss",
    "cost": "loss",
    "objective": "loss",
    "total_loss": "loss",
    "tot_loss": "loss",
    "loss_total": "loss",
    "avg_loss": "loss",
    "average_loss": "loss",
    "mean_loss": "loss",
    "running_loss": "loss",
    "loss_avg": "loss",
    "loss_mean": "loss",
    "dice_coef": "dice",
    "dice_coefficient": "dice",
    "dice_score": "dice",
    "acc": "accuracy",
    "accuracy": "accuracy",
    "categorical_accuracy": "accuracy",
    "sparse_categorical_accuracy": "accuracy",
    "binary_accuracy": "accuracy",
    "top_k_categorical_accuracy": "top5_accuracy",
    "sparse_top_k_categorical_accuracy": "top5_accuracy",
    "top1": "accuracy",
    "top1_acc": "accuracy",
    "top1_accuracy": "accuracy",
    "acc1": "accuracy",
    "top5": "top5_accuracy",
    "top_k_acc": "top5_accuracy",
    "top_5": "top5_accuracy",
    "top5_acc": "top5_accuracy",
    "top_5_accuracy": "top5_accuracy",
    "top5_accuracy": "top5_accuracy",
    "acc5": "top5_accuracy",
    "mae": "mae",
    "mean_absolute_error": "mae",
    "mse": "mse",
    "mean_squared_error": "mse",
    "rmse": "rmse",
    "root_mean_squared_error": "rmse",
    "r2": "r2",
    "r2_score": "r2",
    "auc": "auc",
    "roc_auc": "auc",
    "auroc": "auc",
    "f1": "f1",
    "f1_score": "f1",
    "precision": "precision",
    "recall": "recall",
    "iou": "mean_iou",
    "miou": "mean_iou",
    "mean_iou": "mean_iou",
    "meaniou": "mean_iou",
    "lr": "lr",
    "learning_rate": "lr",
    "learningrate": "lr",
    "grad_norm": "grad_norm",
    "gradient_norm": "grad_norm",
    "grad_norm_global": "grad_norm",
    "grad_norm_first": "grad_norm_first",
    "grad_norm_last": "grad_norm_last",
    "update_ratio": "update_ratio",
    "dead_fraction": "dead_fraction",
    "epoch_time": "epoch_time",
    "time_per_epoch": "epoch_time",
    "duration": "epoch_time",
}

# Contract metric names (and words naming a phase), for readers that must tell a
# metric from any other word followed by a number.
KNOWN_METRICS = frozenset(_ALIASES.values()) | {"dice", "perplexity", "ppl", "error_rate"}
PHASE_WORDS = frozenset(_PHASES)

# Series that describe the optimiser or the run, never a validation split.
_RUN_SERIES = frozenset(DIAGNOSTIC_SERIES)

# Columns that count things rather than measure the model.
_BOOKKEEPING = {
    "step",
    "steps",
    "global_step",
    "epoch",
    "epochs",
    "batch",
    "iter",
    "iteration",
    "v_num",
    "eta",
    "time",
    "runtime",
    "samples_per_second",
    "steps_per_second",
    "total_flos",
    "flos",
    "num_input_tokens_seen",
    "it_s",
    "s_it",
    "wall_time",
    "timestamp",
    "created_at",
    "hp_metric",
    "batch_size",
    "samples",
    "num_samples",
    "examples",
    "index",
    "ms",
    "time_s",
    "eta_seconds",
    "data_time",
    "temperature",
    "sec",
    "secs",
    "seconds",
}


@dataclass(frozen=True)
class Name:
    """A normalised series name and the granularity its raw spelling carried."""

    series: str
    granularity: str | None = None  # "step", "epoch" or None


_YOLO_METRIC = re.compile(r"(?i)^metrics/(.+?)\(([BM])\)$")


def _tokens(raw: str) -> list[str]:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", raw.strip())  # camelCase -> camel_case
    return [t for t in re.split(r"[\s_/\-.:]+", text.lower()) if t]


@lru_cache(maxsize=4096)  # a log repeats the same few names on every line
def normalise(raw: str) -> Name | None:
    """The contract name for a raw metric name, or None for bookkeeping columns.

    >>> normalise("val_acc").series, normalise("eval_loss").series, normalise("Loss/train").series
    ('val_accuracy', 'val_loss', 'loss')
    >>> normalise("train_loss_step")
    Name(series='loss', granularity='step')
    >>> normalise("eval_runtime") is None
    True
    """
    yolo = _YOLO_METRIC.match(raw.strip())
    if yolo is not None:  # Ultralytics: metrics/mAP50-95(B) is measured on the validation set
        metric = re.sub(r"[^a-z0-9]+", "_", yolo.group(1).lower()).strip("_")
        return Name("val_" + metric + ("_mask" if yolo.group(2).upper() == "M" else ""))
    tokens = _tokens(raw)
    if not tokens:
        return None
    whole = "_".join(tokens)
    if whole in _BOOKKEEPING or whole.startswith("unnamed"):  # pandas' "Unnamed: 0" index
        return None
    if "best" in tokens:  # a running best (best_val_loss) or a summary line, not a curve
        return None
    if "num" in tokens:  # counts (Detectron2's roi_head/num_fg_samples), not measures
        return None
    if whole in _ALIASES and _ALIASES[whole] in _RUN_SERIES:
        return Name(_ALIASES[whole])
    if whole.startswith("lr_"):  # Lightning's LearningRateMonitor: lr-Adam, lr-SGD/pg1
        return Name("lr")
    granularity = None
    if len(tokens) > 1 and tokens[-1] == "step":  # Lightning: train_loss_step
        granularity = "step"
        tokens.pop()
    if len(tokens) > 1 and "batch" in tokens:  # Keras' TensorBoard tags: batch_loss
        granularity = "step"
        tokens = [t for t in tokens if t != "batch"]
    if len(tokens) > 1 and "epoch" in tokens and [t for t in tokens if t != "epoch"] != ["time"]:
        granularity = "epoch"  # Lightning's train_loss_epoch; Keras' TensorBoard tags: epoch_loss
        tokens = [t for t in tokens if t != "epoch"]
    phase = ""
    rest = []
    for token in tokens:
        if token in _PHASES and not phase:
            phase = _PHASES[token]
        else:
            rest.append(token)
    base = "_".join(rest)
    if not base or base in _BOOKKEEPING or "_".join(tokens) in _BOOKKEEPING:
        return None
    if base.endswith(("runtime", "per_second", "flos")):
        return None
    metric = _ALIASES.get(base, base)
    if metric in _RUN_SERIES:
        return Name(metric, granularity)
    return Name(phase + metric, granularity)
