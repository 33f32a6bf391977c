"""The contract's names, in one place, with no jax.

Every name that crosses a file boundary (profile, plan, history, rule files) is a
``Literal`` here, so pydantic validates it, the rule linter checks rule values
against it, and a test holds the engine's registries equal to it.  This module
also declares the *facts* the rule engine reasons over: their type, their
allowed values where they are categorical, and what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

TaskName = Literal["regression", "binary", "multiclass", "multilabel", "gan", "detection"]
Modality = Literal["image", "tabular", "sequence"]
LabelEncoding = Literal["integer", "one_hot", "soft", "mask", "boxes"]
SimilarityClass = Literal["similar", "different"]

LossName = Literal[
    "mse",
    "mae",
    "huber",
    "binary_crossentropy",
    "hinge",
    "focal",
    "dice",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "kl_divergence",
    "adversarial",
    "wasserstein",
    "l1",
    "l2",
    "iou",
    "giou",
    "smooth_l1",
]
OptimizerName = Literal["gd", "sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw"]
ScheduleName = Literal[
    "constant", "step", "exponential", "cosine", "warmup_cosine", "cosine_restarts", "reduce_on_plateau"
]
ArchName = Literal["mlp", "cnn", "resnet"]
Activation = Literal["relu", "leaky_relu", "elu", "gelu", "silu", "tanh", "sigmoid"]
AugmentationName = Literal[
    "flip", "shift", "crop", "rotate", "brightness", "contrast", "noise", "mixup"
]
FreezeStrategy = Literal[
    "from_scratch",
    "full_fine_tune",
    "partial_fine_tune",
    "freeze_base",
    "feature_extractor",
    "two_stage",
]
ClassMode = Literal["binary", "categorical"]
SearchMethod = Literal["grid", "random", "tpe"]
Precision = Literal["float32", "bfloat16"]
DeviceName = Literal["auto", "cpu", "gpu", "tpu"]
ProblemName = Literal[
    "overfitting",
    "underfitting",
    "lr_too_high",
    "lr_too_low",
    "plateau",
    "diverged",
    "not_converged",
    "healthy",
    "vanishing_gradients",
    "exploding_gradients",
    "dead_units",
]
Severity = Literal["info", "warning", "critical"]

TASKS: tuple[str, ...] = get_args(TaskName)
LOSSES: tuple[str, ...] = get_args(LossName)
OPTIMIZERS: tuple[str, ...] = get_args(OptimizerName)
SCHEDULES: tuple[str, ...] = get_args(ScheduleName)
ARCHS: tuple[str, ...] = get_args(ArchName)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
AUGMENTATIONS: tuple[str, ...] = get_args(AugmentationName)
FREEZE_STRATEGIES: tuple[str, ...] = get_args(FreezeStrategy)
PROBLEMS: tuple[str, ...] = get_args(ProblemName)

CLASSIFICATION_TASKS = ("binary", "multiclass", "multilabel")


@dataclass(frozen=True)
class FactSpec:
    """What a fact is: its value type, the values it may take, and its meaning."""

    type: Literal["str", "int", "float", "bool", "list"]
    description: str
    values: tuple[str, ...] | None = None  # allowed values of a categorical fact
    unit: str | None = None


def _cat(description: str, values: tuple[str, ...]) -> FactSpec:
    return FactSpec("str", description, values)


# Facts read off a Profile (see advisor/facts.py) and facts that rules derive.
# A rule may only name facts declared here or plan fields (``plan.<path>``).
FACTS: dict[str, FactSpec] = {
    # --- read off the profile -------------------------------------------------
    "task": _cat("the learning task", TASKS),
    "modality": _cat("what one input is", get_args(Modality)),
    "label_encoding": _cat("how targets are written", get_args(LabelEncoding)),
    "n_train": FactSpec("int", "training examples", unit="samples"),
    "n_val": FactSpec("int", "validation examples, when the profile gives them", unit="samples"),
    "n_classes": FactSpec("int", "number of classes (classification tasks)"),
    "input_shape": FactSpec("list", "shape of one input, without the batch axis"),
    "input_rank": FactSpec("int", "number of axes of one input (1 = vector, 3 = image HWC)"),
    "input_size": FactSpec("int", "number of values in one input (product of input_shape)"),
    "imbalance_ratio": FactSpec(
        "float", "largest class count over smallest (1 = balanced)", unit="ratio"
    ),
    "minority_fraction": FactSpec("float", "share of the smallest class in the training set"),
    "samples_per_class": FactSpec("float", "n_train / n_classes", unit="samples"),
    "targets_have_outliers": FactSpec("bool", "the profile says regression targets hold outliers"),
    "margin_classifier": FactSpec("bool", "the profile asks for a max-margin (SVM-like) classifier"),
    "gan_objective": _cat("the GAN objective the profile asks for", ("standard", "wasserstein")),
    "gan_reconstruction": _cat(
        "paired-image GAN reconstruction term asked for", ("none", "l1", "l2")
    ),
    "metric": FactSpec("str", "the metric that matters to the user"),
    "has_pretrained": FactSpec("bool", "the profile names a pretrained base"),
    "pretrained.base": FactSpec("str", "the pretrained base: a run checkpoint or an import"),
    "pretrained.source_domain": FactSpec("str", "what the base was trained on"),
    "pretrained.similarity_label": _cat(
        "similarity of the new data to the base's data, as the user judged it",
        get_args(SimilarityClass),
    ),
    "pretrained.similarity_score": FactSpec(
        "float", "measured similarity of the new data to the base's data, in [0, 1]"
    ),
    "budget.max_epochs": FactSpec("int", "most epochs the user will pay for"),
    "budget.max_minutes": FactSpec("float", "wall-clock budget for training", unit="minutes"),
    "budget.device": _cat("the device the user will train on", get_args(DeviceName)),
    "has_data": FactSpec("bool", "the profile says where the data is, so the plan can run"),
    "data.kind": _cat("kind of data source", ("builtin", "npz", "csv", "image_folder")),
    "lr_find.learning_rate": FactSpec(
        "float", "learning rate suggested by an LR range test (advisor lr-find)"
    ),
}


def plan_fact(path: str) -> str:
    """The fact name under which a plan field's current value is visible to rules."""
    return f"plan.{path}"
