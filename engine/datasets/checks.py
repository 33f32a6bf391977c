"""Pre-flight checks: what an expert looks at before pressing "train".

``check_plan(plan)`` runs before any data is read (the loss fits the task, the
output layer fits the task, early stopping watches a series the run records);
``check_data(plan, dataset)`` runs on the loaded split (NaN in the inputs,
inputs left unscaled, a class missing from validation, a dropout above 0.5).
A run that cannot be right raises ``InputError`` naming the plan field; one
that can but probably should not get a ``CheckWarning`` carrying the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from advisor.contract.errors import InputError
from advisor.contract.schemas import Plan
from advisor.contract.vocabulary import DIAGNOSTIC_SERIES
from engine.datasets.data import Dataset

# The losses that fit each task (lecture table 3.1, and the contract's target forms).
LOSSES_FOR_TASK: dict[str, tuple[str, ...]] = {
    "regression": ("mse", "mae", "huber", "l1", "l2", "smooth_l1"),
    "binary": ("binary_crossentropy", "hinge", "focal", "dice"),
    "multiclass": (
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "kl_divergence",
        "focal",
        "dice",
    ),
    "multilabel": ("binary_crossentropy", "focal", "dice", "hinge"),
    "gan": ("adversarial", "wasserstein"),
    "detection": ("iou", "giou", "smooth_l1"),
}
# Inputs whose spread or centre is beyond this are "not normalised": the first
# layer's activations start far from where initialisers assume (unit variance).
_SCALE_LIMIT = 10.0
# Series every supervised run records, besides the metrics the plan names.
_ALWAYS = ("loss", "val_loss", *DIAGNOSTIC_SERIES)


@dataclass(frozen=True)
class CheckWarning:
    """Something that will run but probably not as the user wants, and the fix."""

    field: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"warning: {self.field}: {self.message}; {self.fix}"


def expected_output_units(plan: Plan) -> int | None:
    """The output layer's size the task's targets need; None where the data decides."""
    task, k = plan.task, plan.n_classes
    if task == "binary":
        return 1
    if task in ("multiclass", "multilabel"):
        return k
    if task == "detection":  # one box + classes, or per grid cell a box, objectness, classes
        return plan.model.grid**2 * (5 + k) if plan.model.grid else 4 + k
    if task == "gan":
        return math.prod(plan.input_shape)
    return None


def check_plan(plan: Plan) -> list[CheckWarning]:
    """Checks on the plan alone; raises InputError where the run cannot be right."""
    fits = LOSSES_FOR_TASK[plan.task]
    if plan.loss.name not in fits:
        raise InputError(
            f"loss.name: {plan.loss.name!r} does not fit task {plan.task}; expected one of {', '.join(fits)}"
        )
    want = expected_output_units(plan)
    if want is not None and plan.model.output_units != want:
        raise InputError(
            f"model.output_units: {plan.model.output_units} does not fit task {plan.task}"
            f"{f' with {plan.n_classes} classes' if plan.n_classes else ''}; expected {want}"
        )
    if plan.task == "multiclass" and plan.loss.name == "sparse_categorical_crossentropy":
        if any(a.name == "mixup" for a in plan.regularization.augmentation):
            raise InputError(
                "regularization.augmentation: mixup mixes targets, which class ids cannot hold; "
                "use loss categorical_crossentropy with mixup"
            )
    spec = plan.regularization.early_stopping
    if spec is not None and plan.task != "gan":
        known = set(_ALWAYS) | set(plan.metrics) | {f"val_{m}" for m in plan.metrics}
        if spec.monitor not in known:
            raise InputError(
                f"regularization.early_stopping.monitor: {spec.monitor!r} is not recorded by this run; "
                f"expected one of {', '.join(sorted(known))}"
            )
    warnings = []
    if plan.model.dropout > 0.5:
        warnings.append(
            CheckWarning(
                "model.dropout",
                f"{plan.model.dropout:g} drops most units each step and slows learning",
                "use 0.2-0.5 (0.5 is the usual ceiling for dense layers)",
            )
        )
    if plan.batch_size >= plan.n_train and plan.optimizer.name != "gd":
        warnings.append(
            CheckWarning(
                "batch_size",
                f"{plan.batch_size} covers the whole training set, so {plan.optimizer.name} runs full batch",
                "lower batch_size for stochastic updates, or name optimizer gd",
            )
        )
    return warnings


def check_data(plan: Plan, data: Dataset) -> list[CheckWarning]:
    """Checks on the loaded, split data (NaN was refused earlier by ``check_finite``)."""
    warnings = []
    if plan.data.normalize == "none" and plan.task != "gan":
        x = data.x_train  # unscaled, since normalize is "none"
        centre, spread = float(np.abs(x.mean())), float(x.std())
        if spread > _SCALE_LIMIT or centre > _SCALE_LIMIT:
            warnings.append(
                CheckWarning(
                    "data.normalize",
                    f"inputs are not normalised (mean {x.mean():.3g}, std {spread:.3g})",
                    "set data.normalize to 'standardize' (or 'scale_01' for pixels)",
                )
            )
    if plan.task in ("binary", "multiclass"):
        missing = sorted(set(range(plan.n_classes)) - set(np.unique(data.y_val).tolist()))
        if missing:
            warnings.append(
                CheckWarning(
                    "data.val_fraction",
                    f"class(es) {missing} have no validation example, so their errors go unseen",
                    "raise val_fraction or gather more examples of those classes",
                )
            )
        absent = sorted(set(range(plan.n_classes)) - set(np.unique(data.y_train).tolist()))
        if absent:
            warnings.append(
                CheckWarning(
                    "n_classes",
                    f"class(es) {absent} have no training example",
                    "check the labels or lower n_classes",
                )
            )
    if plan.task == "regression" and plan.model.output_units != data.y_train.shape[1]:
        raise InputError(
            f"model.output_units: {plan.model.output_units} does not match the {data.y_train.shape[1]} "
            "target column(s) of the data"
        )
    return warnings
