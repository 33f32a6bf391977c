"""The file formats: Profile, Plan, History, Diagnosis and RunResult (pydantic v2).

Every model is strict (``extra="forbid"``) and frozen, so a misspelled field is
an error rather than a silently ignored key, and a plan cannot be changed behind
the explanations that justify it.  These field names are the contract between
the advisor and the engine; ``advisor schema NAME`` prints the JSON Schema built
from them.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from advisor.contract import versions
from advisor.contract.vocabulary import (
    CLASSIFICATION_TASKS,
    Activation,
    ArchName,
    AugmentationName,
    ClassMode,
    DeviceName,
    FreezeStrategy,
    LabelEncoding,
    LossName,
    Modality,
    OptimizerName,
    Precision,
    ProblemName,
    ScheduleName,
    SearchMethod,
    Severity,
    SimilarityClass,
    TaskName,
)

# Bounds on every number a user file can hold.  None of them is advice: each is
# far beyond any sensible value and only keeps a typo or a fuzzer's input
# (10**40 epochs, a 60000x60000 image) from hanging the run or aborting XLA.
MAX_COUNT = 10**12  # examples, steps
MAX_EPOCHS = 100_000
MAX_WIDTH = 1 << 20  # units, filters, classes, outputs, one dimension of an input
MAX_IMAGE_SIDE = 4096  # pixels per side after resizing
MAX_LIST = 100_000  # items in a list the user writes (class counts, class ids)
MAX_SEED = 2**31 - 1  # JAX keys take a 32-bit seed
MAX_LEARNING_RATE = 1000.0
MAX_INPUT_ELEMENTS = 2**28  # values in one example (a 4096 x 4096 x 16 image is 2**28)

PositiveInt = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Epochs = Annotated[int, Field(ge=1, le=MAX_EPOCHS)]
EpochsOrZero = Annotated[int, Field(ge=0, le=MAX_EPOCHS)]
Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
Side = Annotated[int, Field(ge=1, le=MAX_IMAGE_SIDE)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Shape = Annotated[list[Width], Field(min_length=1, max_length=5)]
Blocks = Annotated[int, Field(ge=1, le=1000)]
ClassIds = Annotated[list[Annotated[int, Field(ge=0, le=MAX_WIDTH)]], Field(max_length=MAX_LIST)]


class Strict(BaseModel):
    """Base of every file model: unknown fields are errors; instances are immutable;
    NaN and infinities are refused (a learning rate of Infinity is a typo, not a plan)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _schema_key(schema: dict[str, Any]) -> None:
    """Let a file name its JSON Schema under ``$schema`` (editors do), first among the keys."""
    schema["properties"] = {
        versions.SCHEMA_KEY: {"type": "string", "description": "the JSON Schema this file follows"},
        **schema.get("properties", {}),
    }


class Versioned(Strict):
    """Base of every file model: a ``format_version`` (older files are migrated on reading,
    newer ones refused, see ``advisor.contract.versions``) and an optional ``$schema`` key."""

    model_config = ConfigDict(json_schema_extra=_schema_key)
    format_kind: ClassVar[str]

    format_version: int = Field(
        versions.FIRST,
        ge=versions.FIRST,
        description="version of this file's format; a file without one is version 1",
    )

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        return versions.upgrade(cls.format_kind, data) if isinstance(data, dict) else data


# Models the engine writes (histories, diagnoses, results) record NaN and
# infinities as they happened: a diverged loss is data, not an input error.
_RECORD = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=True)


# ----------------------------------------------------------------------------- data


BuiltinDatasetName = Literal[
    "digits",
    "iris",
    "wine",
    "breast_cancer",
    "diabetes",
    "shapes",
    "shapes_detection",
    "digits_attributes",
    "digits_detection",
]


class BuiltinData(Strict):
    """A dataset that ships inside an installed package or is generated: no download."""

    kind: Literal["builtin"] = "builtin"
    name: BuiltinDatasetName = Field(
        description="digits/iris/wine/breast_cancer/diabetes come with scikit-learn; "
        "shapes and shapes_detection are generated from the seed; digits_attributes "
        "(multilabel) and digits_detection (several digits on a canvas) are derived from digits"
    )
    image_size: tuple[Side, Side] | None = Field(
        None, description="resize image datasets to (height, width); None keeps them as they are"
    )
    n_samples: Annotated[int, Field(ge=1, le=10**7)] | None = Field(
        None, description="how many examples a generated dataset has; None for its default"
    )
    classes: ClassIds | None = Field(
        None, description="keep only these classes (relabelled 0..k-1), e.g. a digit subset"
    )
    subsample: PositiveInt | None = Field(
        None, description="keep this many training examples, drawn with the split seed"
    )
    positive_class: Annotated[int, Field(ge=0, le=MAX_WIDTH)] | None = Field(
        None,
        description="one-vs-rest binary task: this class (after `classes`) is 1, every other 0",
    )


class NpzData(Strict):
    """Arrays in a NumPy ``.npz`` file."""

    kind: Literal["npz"] = "npz"
    path: str = Field(
        description="path to the .npz file, relative to the plan's folder or absolute"
    )
    x_key: str = Field("x", description="array holding the inputs, first axis = examples")
    y_key: str = Field("y", description="array holding the targets, first axis = examples")


class CsvData(Strict):
    """A table: one row per example, one column the target."""

    kind: Literal["csv"] = "csv"
    path: str = Field(description="path to the .csv file (header row required) or .parquet file")
    target: str = Field(description="the column to predict")
    features: Annotated[list[str], Field(max_length=MAX_LIST)] | None = Field(
        None, description="feature columns; None = every other column"
    )
    categories: dict[str, Annotated[list[str], Field(max_length=MAX_LIST)]] | None = Field(
        None,
        max_length=MAX_LIST,
        description="text feature column -> its values; a value is coded as its position. "
        "None = each text column's distinct values in sorted order, as read",
    )


class ImageFolderData(Strict):
    """Images in one sub-folder per class (Keras ``flow_from_directory`` layout)."""

    kind: Literal["image_folder"] = "image_folder"
    path: str = Field(description="folder holding one sub-folder per class")
    image_size: tuple[Side, Side] = Field(description="(height, width) to resize to")
    color_mode: Literal["grayscale", "rgb"] = Field("rgb", description="channels to load")


DataSource = Annotated[
    BuiltinData | NpzData | CsvData | ImageFolderData, Field(discriminator="kind")
]


class DataPlan(Strict):
    """Where the data is, how it is split and how inputs are scaled."""

    source: DataSource | None = Field(
        None, description="where the examples are; None = the plan is advice only and cannot run"
    )
    val_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, description="share of the examples held out for validation"
    )
    split_seed: Seed = Field(0, description="seed of the train/validation (and test) split")
    normalize: Literal["none", "standardize", "scale_01"] = Field(
        "standardize", description="input scaling, fitted on the training split only"
    )
    test: DataSource | None = Field(
        None,
        description="a separate labelled source held out for the final test score; "
        "never trained on, never used for early stopping or search selection",
    )
    test_fraction: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="share of the source held out as a test split (stratified for classes, "
        "drawn with split_seed) before the validation split; 0 = no test split",
    )

    @model_validator(mode="after")
    def _one_test_split(self) -> DataPlan:
        if self.test is not None and self.test_fraction > 0:
            raise ValueError(
                "test_fraction: the plan names a test source too; "
                "keep data.test or data.test_fraction, not both"
            )
        if self.test_fraction + self.val_fraction >= 1.0:
            raise ValueError(
                f"test_fraction: {self.test_fraction} + val_fraction {self.val_fraction} leaves no "
                "training example; keep their sum below 1"
            )
        return self


# ----------------------------------------------------------------------------- profile


class SimilarityEvidence(Strict):
    """How ``advisor profile --base`` measured similarity (engine/pretrained/similarity.py, docs/transfer.md)."""

    model_config = _RECORD

    closeness: float | None = Field(
        None,
        description="2^(-shift / 0.25): how familiar the inputs look to the base's BatchNorm layers",
    )
    shift: float | None = Field(
        None,
        description="mean symmetric KL between the new data's and the base's per-channel statistics",
    )
    relevance: float | None = Field(
        None, description="min(1, separability / 0.5): the probe's veto"
    )
    separability: float | None = Field(
        None, description="linear probe on the base's features: (accuracy - chance) / (1 - chance)"
    )
    probe_accuracy: float | None = Field(
        None, description="cross-validated probe accuracy (regression: R^2)"
    )
    chance: float | None = Field(
        None, description="accuracy of always predicting the majority class"
    )
    n_examples: int = Field(description="training examples the measurement used")


class Pretrained(Strict):
    """A base model to transfer from, and how close its data is to the new data."""

    base: str = Field(description="a run directory / checkpoint of this project, or an import name")
    source_domain: str | None = Field(None, description="what the base was trained on")
    similarity: SimilarityClass | Fraction | None = Field(
        None,
        description="'similar' / 'different', or a measured score in [0, 1] "
        "(see `advisor profile --base`)",
    )
    model: ModelPlan | None = Field(
        None,
        description="the base's model section as its checkpoint records it (`advisor profile "
        "--base` fills it in); a plan that loads the base copies its backbone structure from here",
    )
    input_shape: Shape | None = Field(
        None, description="the input shape the base was trained on, from its checkpoint"
    )
    n_params: PositiveInt | None = Field(
        None, description="the base's trained weights, counted from its checkpoint"
    )
    measured: SimilarityEvidence | None = Field(
        None, description="the evidence behind a measured similarity score"
    )


class Budget(Strict):
    """What the user will spend on training."""

    max_epochs: Epochs | None = Field(None, description="most epochs to train")
    max_minutes: float | None = Field(None, gt=0, description="wall-clock budget in minutes")
    device: DeviceName = Field("auto", description="where training will run")
    max_trials: PositiveInt | None = Field(
        None, description="training runs a hyperparameter search may use; None or 1 = no search"
    )


class LrFindResult(Strict):
    """The outcome of ``advisor lr-find``, fed back into a profile."""

    learning_rate: float = Field(gt=0, le=MAX_LEARNING_RATE, description="suggested learning rate")
    spread: float | None = Field(
        None,
        ge=0,
        description="spread of the suggestion across seeds: log10(largest / smallest seed's rate)",
    )


class TargetEvidence(Strict):
    """Numbers ``advisor profile`` measured on the training targets (1-D numeric targets).

    The rules in rules/12_profile_evidence.toml judge them: an integer target
    over many values, some seen only a few times, is a count (regression); a
    target far from its median in robust units holds outliers.
    """

    integral: bool = Field(description="every target is a whole number")
    n_distinct: int = Field(ge=1, description="distinct target values")
    span: float = Field(ge=0.0, description="largest target minus smallest")
    min_per_value: int = Field(ge=1, description="examples that share the rarest target value")
    max_robust_z: float = Field(
        ge=0.0,
        description="largest modified z-score 0.6745 |y - median| / MAD (0 when MAD is 0)",
    )
    judged: dict[str, str] = Field(
        default_factory=dict, description="what the rules concluded: fact -> reason"
    )


class InputEvidence(Strict):
    """Numbers ``advisor profile`` measured on the inputs (judged by rules/12_*.toml)."""

    zero_fraction: float = Field(
        ge=0.0, le=1.0, description="share of input values that are exactly 0"
    )
    judged: dict[str, str] = Field(
        default_factory=dict, description="what the rules concluded: fact -> reason"
    )


class Profile(Versioned):
    """What a practitioner knows about the problem before training."""

    format_kind: ClassVar[str] = "profile"

    name: str | None = Field(None, description="a short name for the problem")
    description: str | None = Field(None, description="free text; not read by the rules")
    task: TaskName = Field(description="the learning task")
    modality: Modality = Field(description="what one input is")
    n_train: PositiveInt = Field(description="number of training examples")
    n_val: PositiveInt | None = Field(None, description="number of validation examples, if fixed")
    input_shape: Shape = Field(
        description="shape of one input without the batch axis, e.g. [28, 28, 1]"
    )
    n_classes: Width | None = Field(
        None, description="number of classes (binary: 2); omit for regression"
    )
    label_encoding: LabelEncoding | None = Field(
        None,
        description="integer, one_hot, soft, mask (segmentation), boxes (detection, one object "
        "an image) or box_sets (detection, several objects: padded rows with a valid flag)",
    )
    class_counts: Annotated[list[PositiveInt], Field(max_length=MAX_LIST)] | None = Field(
        None, description="training examples per class, in class order"
    )
    imbalance_ratio: float | None = Field(
        None, ge=1.0, description="largest class count over smallest, if counts are not given"
    )
    targets_have_outliers: bool = Field(
        False, description="regression targets hold large outliers (favours a robust loss)"
    )
    targets: TargetEvidence | None = Field(
        None, description="measured by advisor profile: the numbers behind task and outlier flag"
    )
    inputs: InputEvidence | None = Field(
        None, description="measured by advisor profile: the number behind the sparse_inputs flag"
    )
    margin_classifier: bool = Field(
        False, description="a max-margin (SVM-style) binary classifier is wanted"
    )
    n_targets: Width | None = Field(
        None, description="regression: values predicted per example (None = 1)"
    )
    sparse_inputs: bool = Field(
        False, description="most input values are zero (one-hot, bag-of-words, counts)"
    )
    flip_invariant: bool = Field(
        False,
        description="mirroring an image left-right keeps its label (photos: yes; digits, text: no)",
    )
    gan_objective: Literal["standard", "wasserstein"] | None = Field(
        None, description="GAN objective, if the user has a preference"
    )
    gan_reconstruction: Literal["none", "l1", "l2"] | None = Field(
        None, description="paired image-to-image GAN: pixel reconstruction term"
    )
    metric: str | None = Field(
        None, description="the metric that matters, e.g. accuracy, auc, f1, mae"
    )
    pretrained: Pretrained | None = Field(None, description="a base to transfer from")
    budget: Budget | None = Field(None, description="time and device budget")
    data: DataSource | None = Field(None, description="where the data is, so the plan can run")
    history: str | None = Field(None, description="path of an earlier run's history to diagnose")
    lr_find: LrFindResult | None = Field(None, description="result of `advisor lr-find`")

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        _check_input_size(self.input_shape)
        if self.task in CLASSIFICATION_TASKS:
            if self.n_classes is None:
                raise ValueError(f"n_classes: required for task {self.task!r}")
            if self.n_classes < 2:
                raise ValueError(
                    f"n_classes: {self.task} needs at least 2 classes, got {self.n_classes}"
                )
            if self.task == "binary" and self.n_classes != 2:
                raise ValueError(f"n_classes: a binary task has 2 classes, got {self.n_classes}")
        if self.task == "detection" and self.n_classes is None:
            raise ValueError("n_classes: required for task 'detection' (the object classes)")
        if self.class_counts is not None:
            if self.n_classes is not None and len(self.class_counts) != self.n_classes:
                raise ValueError(
                    f"class_counts: {len(self.class_counts)} counts contradict "
                    f"n_classes = {self.n_classes}; expected one count per class"
                )
            if self.imbalance_ratio is not None:
                measured = max(self.class_counts) / min(self.class_counts)
                if not math.isclose(measured, self.imbalance_ratio, rel_tol=0.05):
                    raise ValueError(
                        f"imbalance_ratio: {self.imbalance_ratio} contradicts class_counts "
                        f"(which give {measured:.3g}); give one or make them agree"
                    )
        if self.label_encoding in ("boxes", "box_sets") and self.task != "detection":
            raise ValueError(f"label_encoding: {self.label_encoding!r} is for task 'detection'")
        if self.task == "detection" and self.label_encoding not in (None, "boxes", "box_sets"):
            raise ValueError(
                "label_encoding: a detection task has 'boxes' (one object an image) "
                "or 'box_sets' (several) labels"
            )
        if self.label_encoding == "mask" and self.task not in ("binary", "multiclass"):
            raise ValueError(
                "label_encoding: 'mask' (segmentation) needs task binary or multiclass"
            )
        if self.label_encoding == "mask" and (
            self.modality != "image" or len(self.input_shape) != 3
        ):
            raise ValueError(
                "label_encoding: 'mask' labels pixels; expected modality 'image' with "
                "input_shape [height, width, channels]"
            )
        return self


def _check_input_size(shape: list[int]) -> None:
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise ValueError(
            f"input_shape: {shape} holds {math.prod(shape)} values per example; "
            f"expected at most {MAX_INPUT_ELEMENTS}"
        )


# ----------------------------------------------------------------------------- plan


class ModelPlan(Strict):
    """The network: architecture, structure hyperparameters, base and head."""

    arch: ArchName = Field(description="mlp, cnn or resnet")
    hidden_layers: Annotated[int, Field(ge=0, le=1000)] | None = Field(
        None, description="mlp: number of hidden dense layers"
    )
    units: Width | None = Field(None, description="mlp: width of each hidden layer")
    filters: Annotated[list[Width], Field(max_length=1000)] | None = Field(
        None, description="cnn: filters of each conv block; resnet: width of each stage"
    )
    blocks_per_stage: Blocks | None = Field(None, description="resnet: residual blocks per stage")
    kernel_size: Side | None = Field(None, description="cnn: convolution kernel size")
    pooling: Literal["max", "avg"] | None = Field(None, description="cnn: pooling after each block")
    batch_norm: bool = Field(False, description="batch normalisation after each conv/dense layer")
    activation: Activation = Field("relu", description="hidden-layer activation")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout rate before each dense layer")
    head_units: Annotated[list[Width], Field(max_length=1000)] = Field(
        default_factory=list, description="dense layers of the head, before the output layer"
    )
    output_units: Width = Field(description="outputs of the last layer, sized to the task")
    latent_dim: Width | None = Field(None, description="gan: size of the generator's noise input")
    grid: Annotated[int, Field(ge=1, le=64)] | None = Field(
        None,
        description="detection of several objects: cells per side of the output grid, each "
        "predicting one box, an objectness and the classes; None = one box per image",
    )
    base: str | None = Field(
        None, description="pretrained base: a run directory or checkpoint to take the backbone from"
    )
    stem: Literal["cifar", "imagenet"] | None = Field(
        None,
        description="resnet: 'cifar' (None) = one 3x3 convolution; 'imagenet' = 7x7 stride-2 "
        "convolution and 3x3 stride-2 max pooling (torchvision/timm ResNets)",
    )
    block: Literal["basic", "bottleneck"] | None = Field(
        None,
        description="resnet: 'basic' (None) = two 3x3 convolutions (resnet18/34); 'bottleneck' = "
        "1x1-3x3-1x1 with 4x wider output (resnet50 and up)",
    )
    stage_blocks: Annotated[list[Blocks], Field(max_length=1000)] | None = Field(
        None,
        description="resnet: residual blocks in each stage, e.g. [3, 4, 6, 3] for resnet34; "
        "None = blocks_per_stage in every stage",
    )

    @model_validator(mode="after")
    def _fields_for_arch(self) -> ModelPlan:
        need = {
            "mlp": ("hidden_layers", "units"),
            "cnn": ("filters", "kernel_size", "pooling"),
            "resnet": ("filters",) + (() if self.stage_blocks else ("blocks_per_stage",)),
        }[self.arch]
        missing = [name for name in need if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{missing[0]}: required for arch {self.arch!r}")
        if self.stage_blocks is not None and len(self.stage_blocks) != len(self.filters or []):
            raise ValueError(
                f"stage_blocks: {len(self.stage_blocks)} stages but filters has {len(self.filters or [])}; "
                "expected one block count per stage width"
            )
        return self


class LossTerm(Strict):
    """An extra weighted loss term (detection: the class term; paired GANs: reconstruction)."""

    name: LossName = Field(description="loss function, by contract name")
    weight: float = Field(1.0, gt=0, description="multiplier of this term in the total")
    params: dict[str, float] = Field(default_factory=dict, description="the loss's parameters")

    @model_validator(mode="after")
    def _params_in_range(self) -> LossTerm:
        _check_loss_params(self.params)
        return self


class LossPlan(Strict):
    """The loss: a registry name and its parameters, plus extra weighted terms.

    Detection: ``name`` is the box term (iou, giou, smooth_l1) and a ``terms``
    entry the class term (focal).  GANs: ``name`` is the adversarial objective
    (adversarial, wasserstein) and an l1/l2 term the reconstruction.
    """

    name: LossName = Field(description="loss function, by contract name")
    params: dict[str, float] = Field(
        default_factory=dict, description="e.g. focal gamma/alpha, huber delta, label_smoothing"
    )
    terms: list[LossTerm] = Field(default_factory=list, description="extra weighted terms")
    class_weights: Literal["balanced"] | list[Annotated[float, Field(gt=0)]] | None = Field(
        None,
        description="binary/multiclass: weight of each class's examples in the loss; "
        "'balanced' = n / (k x count of the class) on the training split; None = all 1",
    )

    @model_validator(mode="after")
    def _params_in_range(self) -> LossPlan:
        _check_loss_params(self.params)
        return self


# Where a loss parameter is defined: (low, low included, high, high included).
# Huber's delta = 0 makes the loss identically zero; smooth L1's beta = 0 is L1.
LOSS_PARAM_RANGES: dict[str, tuple[float, bool, float | None, bool]] = {
    "delta": (0.0, False, None, False),
    "beta": (0.0, True, None, False),
    "label_smoothing": (0.0, True, 1.0, False),
    "gamma": (0.0, True, None, False),
    "alpha": (0.0, True, 1.0, True),
    "smooth": (0.0, True, None, False),
    "gradient_penalty": (0.0, True, None, False),
}


def _check_loss_params(params: dict[str, float]) -> None:
    for name, value in params.items():
        if name not in LOSS_PARAM_RANGES:
            continue  # the loss registry names unknown parameters when the plan is built
        low, low_in, high, high_in = LOSS_PARAM_RANGES[name]
        below = value < low or (value == low and not low_in)
        above = high is not None and (value > high or (value == high and not high_in))
        if below or above:
            lo = f"{'[' if low_in else '('}{low:g}"
            hi = f"{high:g}{']' if high_in else ')'}" if high is not None else "inf)"
            raise ValueError(
                f"params.{name}: {value:g} is out of range; expected a value in {lo}, {hi}"
            )


class OptimizerPlan(Strict):
    """The optimizer and its hyperparameters (all from optax)."""

    name: OptimizerName = Field(description="optimizer, by contract name")
    learning_rate: float = Field(gt=0, le=MAX_LEARNING_RATE, description="peak learning rate")
    momentum: float | None = Field(None, ge=0, lt=1, description="sgd/rmsprop momentum")
    nesterov: bool = Field(False, description="sgd/rmsprop: Nesterov momentum")
    weight_decay: float = Field(0.0, ge=0, description="decoupled (adamw) or L2 weight decay")
    clip_norm: float | None = Field(None, gt=0, description="clip the global gradient norm to this")
    b1: float | None = Field(
        None, ge=0, lt=1, description="adam/adamw: first-moment decay; None = optax default 0.9"
    )
    b2: float | None = Field(
        None, ge=0, lt=1, description="adam/adamw: second-moment decay; None = optax default 0.999"
    )


class SchedulePlan(Strict):
    """How the learning rate moves over training."""

    name: ScheduleName = Field(description="learning-rate schedule")
    warmup_epochs: EpochsOrZero = Field(0, description="linear warmup length")
    factor: float = Field(
        0.1, gt=0, le=1, description="step/plateau: multiply the rate by this at each drop"
    )
    step_epochs: Epochs | None = Field(None, description="step: epochs between drops")
    min_ratio: float = Field(0.0, ge=0, le=1, description="cosine: final rate / peak rate")
    patience: Epochs | None = Field(
        None, description="reduce_on_plateau: epochs without improvement before a drop"
    )
    cycle_epochs: Epochs | None = Field(None, description="cosine_restarts: length of a cycle")


class FreezePlan(Strict):
    """Transfer learning: which parts of a pretrained base train, and when."""

    strategy: FreezeStrategy = Field(
        description="how a pretrained base trains, from_scratch to two_stage (docs/transfer.md)"
    )
    trainable_blocks: Annotated[int, Field(ge=0, le=10_000)] | None = Field(
        None,
        description="partial_fine_tune: the top N blocks of the base that train; two_stage: "
        "those that train with the head in the first stage (None = the head alone)",
    )
    head_epochs: EpochsOrZero | None = Field(
        None, description="two_stage: epochs of the first stage (base frozen, head trains)"
    )
    fine_tune_lr_factor: float | None = Field(
        None, gt=0, le=1, description="rate of the fine-tuning stage relative to the head's rate"
    )
    layer_lr_decay: float | None = Field(
        None,
        gt=0,
        le=1,
        description="discriminative rates: each lower block group gets this x the rate above",
    )


class Augmentation(Strict):
    """One augmentation, applied inside the compiled step."""

    name: AugmentationName = Field(description="augmentation, by name")
    strength: float = Field(
        gt=0,
        description="flip: probability; shift/crop: fraction; rotate: degrees; noise: std; ...",
    )


class EarlyStopping(Strict):
    """Stop when the monitored metric stops improving."""

    monitor: str = Field("val_loss", description="history series to watch")
    mode: Literal["min", "max"] = Field("min", description="whether lower or higher is better")
    patience: Epochs = Field(description="epochs without improvement before stopping")
    min_delta: float = Field(0.0, ge=0, description="smallest change that counts as improvement")
    restore_best: bool = Field(True, description="end with the weights of the best epoch")


class RegularizationPlan(Strict):
    """Protection against overfitting."""

    augmentation: Annotated[list[Augmentation], Field(max_length=100)] = Field(
        default_factory=list, description="in order"
    )
    early_stopping: EarlyStopping | None = Field(None, description="None = train every epoch")


class CheckpointPlan(Strict):
    """When a run saves its full training state (``engine.training.resume``), and how many it keeps."""

    interval_seconds: float = Field(
        60.0,
        ge=0,
        le=86_400,
        description="save after the first epoch that ends this long after the last save "
        "(0 = every epoch); an interrupted run (SIGINT/SIGTERM) always saves",
    )
    keep_last: Annotated[int, Field(ge=1, le=100)] = Field(
        2, description="the most recent checkpoints kept"
    )
    keep_best: bool = Field(
        True,
        description="also keep the checkpoint of the best epoch "
        "(early_stopping.monitor, else val_loss)",
    )


class SearchParam(Strict):
    """One dimension of a search space over a plan field."""

    type: Literal["float", "int", "categorical"] = Field(description="kind of dimension")
    low: float | None = Field(None, description="lower bound (float/int)")
    high: float | None = Field(None, description="upper bound (float/int)")
    log: bool = Field(False, description="sample on a log scale")
    choices: Annotated[list[Any], Field(max_length=10_000)] | None = Field(
        None, description="categorical: the values"
    )

    @model_validator(mode="after")
    def _bounds(self) -> SearchParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("choices: a categorical dimension needs at least one choice")
        else:
            if self.low is None or self.high is None:
                raise ValueError(f"low: a {self.type} dimension needs low and high")
            if self.low > self.high:
                raise ValueError(f"low: {self.low} is above high = {self.high}")
            if self.log and self.low <= 0:
                raise ValueError(f"low: a log-scale dimension needs low > 0, got {self.low}")
        return self


class SearchPlan(Strict):
    """Hyperparameter search over plan fields (Optuna samplers)."""

    method: SearchMethod = Field(description="grid, random or tpe (probabilistic)")
    space: Annotated[dict[str, SearchParam], Field(max_length=100)] = Field(
        description="plan field path -> dimension"
    )
    n_trials: Annotated[int, Field(ge=1, le=100_000)] = Field(description="number of trials")
    epochs_per_trial: Epochs | None = Field(None, description="None = the plan's epochs")
    metric: str = Field("val_loss", description="history series to optimise")
    direction: Literal["minimize", "maximize"] = Field("minimize", description="of the metric")
    pruner: Literal["none", "median", "successive_halving"] = Field(
        "none", description="stop bad trials early on the per-epoch metric"
    )


class Overridden(Strict):
    """A rule that also set a field but lost to a higher-ranked one."""

    rule: str
    value: Any
    priority: int
    reason: str


class Explanation(Strict):
    """Why a field (or derived fact) has its value: the rule, its evidence and its source."""

    value: Any = Field(description="the value the rule set")
    rule: str = Field(description="id of the rule that set it")
    reason: str = Field(description="the rule's reason, in words")
    source: str = Field(description="where the knowledge comes from")
    matched: dict[str, Any] = Field(
        default_factory=dict, description="the facts the rule's conditions matched"
    )
    overridden: list[Overridden] = Field(
        default_factory=list, description="rules that set another value and lost"
    )


MAX_DEVICES = 1 << 16  # devices in one data-parallel mesh (a TPU v5p pod has 8,960 chips)


class ScalePlan(Strict):
    """How a run spreads over devices and reads data larger than memory."""

    devices: Annotated[int, Field(ge=1, le=MAX_DEVICES)] | None = Field(
        None,
        description="devices of the chosen kind each batch is split over (data parallel); "
        "None = every one JAX sees, in every process of a multi-host run",
    )
    data_path: Literal["auto", "memory", "stream"] = Field(
        "auto",
        description="memory = load every example, stream = read batches from a memory-mapped "
        "cache on disk with prefetch; auto = stream above stream_above_mb",
    )
    stream_above_mb: float = Field(
        4096.0,
        gt=0,
        le=1e9,
        description="decoded float32 size of the data above which auto streams (MiB); "
        "4 GiB is a sixth of the 24 GiB machines this was built on, leaving room for the "
        "copy scaling makes and the device buffers",
    )


class Plan(Versioned):
    """Everything the engine needs to train, and why each value is what it is."""

    format_kind: ClassVar[str] = "plan"

    name: str | None = Field(None, description="the profile's name, carried over")
    task: TaskName = Field(description="the learning task")
    modality: Modality = Field(description="what one input is")
    input_shape: Shape = Field(description="shape of one input, without batch axis")
    n_classes: Width | None = Field(None, description="number of classes (classification)")
    n_train: PositiveInt = Field(description="training examples the plan was sized for")
    data: DataPlan = Field(description="data source, split and scaling")
    model: ModelPlan = Field(description="the network")
    loss: LossPlan = Field(description="the loss")
    optimizer: OptimizerPlan = Field(description="the optimizer")
    schedule: SchedulePlan = Field(description="the learning-rate schedule")
    batch_size: Width = Field(description="examples per step")
    epochs: Epochs = Field(description="passes over the training set")
    steps_per_epoch: PositiveInt = Field(description="ceil(n_train / batch_size)")
    class_mode: ClassMode | None = Field(None, description="binary, categorical or none")
    freeze: FreezePlan = Field(description="transfer-learning strategy")
    regularization: RegularizationPlan = Field(description="overfitting protection")
    metrics: Annotated[list[str], Field(max_length=100)] = Field(
        default_factory=list, description="metrics recorded each epoch"
    )
    baselines: list[Literal["hist_gradient_boosting"]] = Field(
        default_factory=list,
        max_length=4,
        description="non-network models fitted on the same split for comparison; "
        "advisor run reports their validation scores beside the network's",
    )
    search: SearchPlan | None = Field(None, description="hyperparameter search, if recommended")
    seed: Seed = Field(0, description="seed of initialisation, shuffling and augmentation")
    precision: Precision = Field("float32", description="compute precision")
    device: DeviceName = Field("auto", description="where to train")
    scale: ScalePlan | None = Field(
        None, description="several devices and streamed data; None = the defaults of ScalePlan"
    )
    output_dir: str | None = Field(None, description="run directory; None = runs/<name>-<time>")
    explanations: dict[str, Explanation] = Field(
        default_factory=dict, description="plan field path -> why it has its value"
    )
    derived_facts: dict[str, Explanation] = Field(
        default_factory=dict, description="facts the rules derived on the way, with their reasons"
    )
    checkpoint: CheckpointPlan | None = Field(
        None, description="training-state checkpoints; None = CheckpointPlan's defaults"
    )

    @model_serializer(mode="wrap")
    def _omit_default_checkpoint(self, handler):
        # plans that never set it are written as before, byte for byte
        data = handler(self)
        if isinstance(data, dict) and data.get("checkpoint") is None:
            data.pop("checkpoint", None)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        _check_input_size(self.input_shape)
        expected = math.ceil(self.n_train / self.batch_size)
        if self.steps_per_epoch != expected:
            raise ValueError(
                f"steps_per_epoch: {self.steps_per_epoch} contradicts "
                f"ceil(n_train / batch_size) = {expected}"
            )
        if self.task in CLASSIFICATION_TASKS and self.n_classes is None:
            raise ValueError(f"n_classes: required for task {self.task!r}")
        return self


# ----------------------------------------------------------------------------- history

HistoryFormat = Literal[
    "native",
    "keras_json",
    "keras_csv",
    "lightning_csv",
    "hf_trainer_state",
    "tensorboard",
    "text_log",
    "pandas_csv",
    "fastai_table",
    "ipynb",
    "json_lines",
]


class HistorySource(Strict):
    """Where a history came from, and what its reader had to leave out."""

    model_config = _RECORD

    format: HistoryFormat = Field(description="the reader that parsed it")
    path: str | None = Field(None, description="the file it was read from")
    skipped: list[str] = Field(
        default_factory=list, description="lines/rows/series left out, and why"
    )
    notes: list[str] = Field(
        default_factory=list,
        description="how values were derived: summed loss heads, per-step means, a partial last epoch",
    )
    run: str | None = Field(
        None, description="the run's sub-folder or cell, when the source held several"
    )


class History(Versioned):
    """Per-epoch series of one training run, under normalised names.

    Names: ``loss``/``val_loss``, metrics as ``accuracy``/``val_accuracy`` etc.,
    and engine diagnostics ``lr``, ``grad_norm``, ``grad_norm_first``,
    ``grad_norm_last``, ``update_ratio``, ``dead_fraction``, ``epoch_time``.
    A missing value is ``None``; NaN and infinities are kept as they are.
    """

    format_kind: ClassVar[str] = "history"

    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_inf_nan="constants", allow_inf_nan=True
    )

    source: HistorySource = Field(description="provenance")
    epochs: list[int] = Field(description="epoch numbers, starting at 1")
    series: dict[str, list[float | None]] = Field(description="series name -> one value per epoch")
    task: TaskName | None = Field(None, description="the task, when known (sets chance level)")
    n_classes: PositiveInt | None = Field(None, description="classes, when known")

    @model_validator(mode="after")
    def _aligned(self) -> History:
        for name, values in self.series.items():
            if len(values) != len(self.epochs):
                raise ValueError(
                    f"series.{name}: {len(values)} values for {len(self.epochs)} epochs; "
                    "expected one value per epoch"
                )
        return self


# ----------------------------------------------------------------------------- diagnosis


class Problem(Strict):
    """One thing that went wrong (or 'healthy'), with the numbers that show it."""

    model_config = _RECORD

    name: ProblemName
    severity: Severity
    epochs: tuple[int, int] | None = Field(None, description="first and last epoch it shows in")
    evidence: dict[str, Any] = Field(
        default_factory=dict, description="curve features that show it"
    )
    rule: str = Field(description="the rule that named it")
    reason: str
    source: str


class Fix(Strict):
    """A plan change made to treat a problem."""

    field: str = Field(description="plan field path")
    old: Any
    new: Any
    problem: ProblemName
    rule: str
    reason: str
    source: str


class Advice(Strict):
    """A recommendation no plan field can carry (collect more data, run an LR range test)."""

    name: str = Field(description="advice fact name, e.g. more_data")
    problem: ProblemName | None = Field(None, description="the problem it treats")
    rule: str
    reason: str
    source: str


class Diagnosis(Versioned):
    """What a history shows, and how the plan should change."""

    format_kind: ClassVar[str] = "diagnosis"

    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_inf_nan="constants", allow_inf_nan=True
    )

    history: HistorySource
    primary: ProblemName | None = Field(
        None, description="the problem to name first, by the precedence in rules/50_problems.toml"
    )
    problems: list[Problem]
    features: dict[str, Any] = Field(default_factory=dict, description="curve features computed")
    fixes: list[Fix] = Field(
        default_factory=list, description="plan changes (empty without a plan)"
    )
    advice: list[Advice] = Field(default_factory=list, description="what to do beyond the plan")
    n_epochs: int = Field(0, ge=0, description="epochs in the diagnosed history")


# ----------------------------------------------------------------------------- run result


class RunResult(Versioned):
    """The run directory and what is in it."""

    format_kind: ClassVar[str] = "run"

    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_inf_nan="constants", allow_inf_nan=True
    )

    run_dir: str
    plan: str = Field(description="the resolved plan, as run")
    history: str = Field(description="history.json")
    metrics: dict[str, float] = Field(description="final (or restored best) validation metrics")
    checkpoint: str | None = Field(None, description="weights (safetensors)")
    curves: str | None = Field(None, description="curves.png")
    diagnosis: str | None = Field(None, description="diagnosis.json")
    next_plan: str | None = Field(None, description="next_plan.json")
    best_epoch: int | None = None
    stopped_early: bool = False
    stopped_reason: str | None = None
    device: str = Field(description="what JAX ran on")
    search: str | None = Field(
        None, description="search.json, when the plan was searched before this run"
    )
    baselines: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="the plan's baselines: validation metrics of each, on the network's split",
    )
    test_metrics: dict[str, float] = Field(
        default_factory=dict,
        description="the final model on the held-out test split, measured once after training "
        "(empty without data.test or data.test_fraction)",
    )
    timing: dict[str, float] = Field(
        default_factory=dict,
        description="elapsed_s (training), compile_s (XLA compilation within it), "
        "samples_per_s (training examples per second of epoch time)",
    )
    resumed_from_epoch: int | None = Field(
        None, description="the checkpoint's epoch when the run was resumed (--resume)"
    )
    samples: list[str] = Field(
        default_factory=list,
        description="a GAN run's sample grid PNGs: every few epochs, then samples_final.png",
    )


class Preprocessing(Versioned):
    """What a run did to raw inputs and targets before the model saw them (``preprocessing.json``).

    ``advisor evaluate``, ``advisor predict`` and ``advisor.load`` read it to
    treat new data exactly as the run treated its training data.
    """

    format_kind: ClassVar[str] = "preprocessing"

    task: TaskName = Field(description="the run's task")
    input_shape: list[PositiveInt] = Field(description="shape of one model input, no batch axis")
    normalize: Literal["none", "standardize", "scale_01"] = Field(description="input scaling")
    stats_shape: list[PositiveInt] | None = Field(
        None, description="shape shift and spread broadcast in (batch axis 1); None = no scaling"
    )
    shift: list[float] | None = Field(
        None, description="subtracted from inputs (fitted on the training split)"
    )
    spread: list[float] | None = Field(None, description="inputs are divided by it after the shift")
    n_classes: PositiveInt | None = Field(None, description="classes (classification)")
    class_names: list[str] | None = Field(
        None,
        description="class id -> name; a CSV's text labels or an image folder's sub-folders "
        "map through it",
    )
    source_kind: Literal["builtin", "npz", "csv", "image_folder"] = Field(
        description="the training source's kind"
    )
    features: list[str] | None = Field(
        None, description="CSV: the feature columns, in the model's order"
    )
    categories: dict[str, list[str]] | None = Field(
        None, description="CSV: text feature column -> its values, coded by position"
    )
    target: str | None = Field(None, description="CSV: the target column")
    x_key: str | None = Field(None, description=".npz: the inputs' array")
    y_key: str | None = Field(None, description=".npz: the targets' array")
    image_size: tuple[PositiveInt, PositiveInt] | None = Field(
        None, description="images are resized to (height, width) before scaling"
    )
    color_mode: Literal["grayscale", "rgb"] | None = Field(
        None, description="image folders: channels"
    )
    builtin: dict[str, Any] | None = Field(
        None, description="builtin sources: the class subset and one-vs-rest choice the run made"
    )


class Evaluation(Versioned):
    """``advisor evaluate``: the run's model on labelled data, every metric of its task."""

    format_kind: ClassVar[str] = "evaluation"

    # a record: a metric undefined on these rows (AUC with one class present) is NaN, not an error
    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_inf_nan="constants", allow_inf_nan=True
    )

    run_dir: str = Field(description="the run whose model was evaluated")
    data: str = Field(description="the labelled data, as given")
    n: int = Field(ge=1, description="examples evaluated")
    task: TaskName
    metrics: dict[str, float] = Field(description="loss and every metric of the task")


# ----------------------------------------------------------------------------- search and lr-find


class ModeTiming(Strict):
    """How trials of one structure trained: vmapped together or one after another, and why."""

    model_config = _RECORD

    structure: str = Field(description="the structure, in short (arch and its sizes)")
    trials: int = Field(ge=1, description="trials trained this way")
    mode: Literal["population", "sequential"] = Field(
        description="vmapped together or one after another"
    )
    speedup: float | None = Field(
        None,
        description="one vmapped step of the trials timed against their steps in turn, compiles left out (None = not timed)",
    )
    expected_population_s: float | None = Field(
        None,
        ge=0,
        description="seconds the trials were expected to take vmapped, compile included (None = not timed)",
    )
    expected_sequential_s: float | None = Field(
        None,
        ge=0,
        description="seconds the trials were expected to take one after another, compile included",
    )


class SearchResult(Versioned):
    """What ``advisor search`` wrote and found."""

    format_kind: ClassVar[str] = "search"

    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_inf_nan="constants", allow_inf_nan=True
    )

    out_dir: str = Field(description="the search directory")
    study_name: str = Field(description="the Optuna study")
    storage: str = Field(description="where the study is kept (journal file or database URL)")
    method: SearchMethod = Field(description="grid, random or tpe")
    metric: str = Field(description="the history series trials are ranked by")
    direction: Literal["minimize", "maximize"] = Field(description="of the metric")
    counts: dict[str, int] = Field(
        description="trials in the study by state: complete, pruned, failed, running"
    )
    best_trial: int | None = Field(None, description="number of the best trial")
    best_value: float | None = Field(None, description="its metric")
    best_plan: str | None = Field(
        None, description="best_plan.json: the plan with the best trial's values"
    )
    leaderboard: str = Field(description="leaderboard.csv")
    plot: str | None = Field(None, description="search.png")
    trials_per_hour: float | None = Field(
        None, description="trials this process trained, per hour of its wall time"
    )
    modes: list[ModeTiming] = Field(
        default_factory=list, description="population or sequential, per structure"
    )
    best_test: dict[str, float] = Field(
        default_factory=dict,
        description="the best trial's final model on the held-out test split, measured once after "
        "selection on validation (empty without a test split)",
    )
    best_run: str | None = Field(
        None, description="the run folder of the best trial, retrained to be tested"
    )


class LrFindSeed(Strict):
    """One seed's sweep of the learning-rate range test."""

    model_config = _RECORD

    seed: int
    losses: list[float | None] = Field(
        description="the loss after the short run, per rate (None = diverged)"
    )
    learning_rate: float | None = Field(
        description="this seed's best rate (None = every rate diverged)"
    )


class LrFindReport(Versioned):
    """The outcome of ``advisor lr-find``: the sweeps, and a suggestion or why there is none."""

    format_kind: ClassVar[str] = "lr_find"

    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_inf_nan="constants", allow_inf_nan=True
    )

    learning_rates: list[float] = Field(description="the log grid of rates tried")
    steps: int = Field(description="training steps of each short run")
    metric: str = Field(description="the loss compared across rates")
    seeds: list[LrFindSeed] = Field(description="one sweep per seed")
    suggestion: LrFindResult | None = Field(
        None, description="the suggested rate and the spread between seeds"
    )
    refused: str | None = Field(None, description="why no rate is suggested")
    plot: str | None = Field(None, description="lr_find.png")


# ----------------------------------------------------------------------------- auto (lineage)


class PlanChange(Strict):
    """One plan field a round changed from the plan it grew from."""

    model_config = _RECORD

    field: str = Field(description="plan field path")
    old: Any = Field(None, description="its value in the parent round's plan")
    new: Any = Field(None, description="its value in this round's plan")


class PrunedDimension(Strict):
    """A search dimension narrowed because a problem was found earlier in the lineage."""

    model_config = _RECORD

    field: str = Field(description="the plan field the dimension searches")
    rule: str = Field(description="id of the pruning entry in rules/auto/auto.toml")
    problem: ProblemName = Field(description="the problem found earlier that narrowed it")
    bound: Literal["at_most", "at_least", "dropped"] = Field(description="what was kept")
    value: Any = Field(None, description="the plan's value the dimension was bounded at")
    found_in: int | None = Field(
        None, description="the round whose diagnosis found the problem (its plan gave the value)"
    )
    reason: str
    source: str


class AutoBudget(Strict):
    """What ``advisor auto`` may spend; any limit reached stops it (None = no limit)."""

    seconds: float | None = Field(None, gt=0, description="wall-clock seconds")
    runs: PositiveInt | None = Field(None, description="trainings (a search trial counts one)")
    examples: PositiveInt | None = Field(
        None, description="examples trained, summed over epochs (n_train x epochs run)"
    )


class AutoSpent(Strict):
    """What ``advisor auto`` has spent so far."""

    seconds: float = Field(0.0, ge=0, description="wall-clock seconds of the rounds")
    runs: int = Field(0, ge=0, description="trainings, search trials included")
    examples: int = Field(0, ge=0, description="examples trained, summed over epochs")


class LineageRound(Strict):
    """One round of ``advisor auto``: the plan it ran, why it differs from its parent, its score."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_inf_nan="constants", allow_inf_nan=True
    )

    round: int = Field(ge=1, description="1, 2, ...")
    kind: Literal["recommended", "start", "revision", "search", "step"] = Field(
        description="where the plan came from: the rules, a given plan, a diagnosis' fixes, "
        "a search, or one step along one dimension from the best plan"
    )
    parent: int | None = Field(None, description="the round whose plan this one changed")
    run_dir: str = Field(description="the round's run folder (a normal advisor run folder)")
    changes: list[PlanChange] = Field(default_factory=list, description="plan diff from the parent")
    cause: str = Field(
        description="the problem whose fixes made this plan, or search / recommended"
    )
    because: list[Problem] = Field(
        default_factory=list, description="the parent's diagnosis that caused it, with its numbers"
    )
    pruned: list[PrunedDimension] = Field(
        default_factory=list, description="search rounds: dimensions narrowed by earlier findings"
    )
    search: str | None = Field(None, description="search rounds: the search's search.json")
    step: str | None = Field(
        None, description="step rounds: the step entry of rules/auto/auto.toml, its reason, source"
    )
    set_aside: list[str] = Field(
        default_factory=list,
        description="search and step rounds: findings that narrowed nothing (their revision lost)",
    )
    score: float | None = Field(None, description="validation score (the lineage's metric)")
    change: float | None = Field(None, description="score minus the best score before this round")
    improved: bool = Field(False, description="a new best by the lineage's metric")
    problems: list[ProblemName] = Field(
        default_factory=list, description="what this round's own diagnosis found"
    )
    seconds: float = Field(ge=0, description="wall-clock seconds of the round, search included")
    runs: int = Field(ge=0, description="trainings in the round, search trials included")
    examples: int = Field(ge=0, description="examples trained in the round, summed over epochs")


class Lineage(Versioned):
    """``lineage.json`` of ``advisor auto``: every round, the best one, and why it stopped."""

    format_kind: ClassVar[str] = "lineage"

    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_inf_nan="constants", allow_inf_nan=True
    )

    data: str = Field(description="the data source, as given")
    target: str | None = Field(None, description="the target column (CSV)")
    metric: str = Field(description="the validation series rounds are scored by")
    direction: Literal["minimize", "maximize"] = Field(description="of the metric")
    metric_rule: str = Field(
        description="the selection entry of rules/auto/auto.toml that chose it"
    )
    budget: AutoBudget
    spent: AutoSpent = Field(default_factory=AutoSpent)
    rounds: list[LineageRound] = Field(default_factory=list)
    best_round: int | None = Field(None, description="the best round by validation score")
    stopped: str | None = Field(None, description="why the loop stopped (None = not finished)")
    final_plan: str | None = Field(None, description="plan.json of the best round")
    test_metrics: dict[str, float] = Field(
        default_factory=dict,
        description="the best round's model on the held-out test split, measured once at the end",
    )


SCHEMAS: dict[str, type[BaseModel]] = {
    "profile": Profile,
    "plan": Plan,
    "history": History,
    "diagnosis": Diagnosis,
    "run": RunResult,
    "preprocessing": Preprocessing,
    "lineage": Lineage,
}
