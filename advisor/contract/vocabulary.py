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
LabelEncoding = Literal["integer", "one_hot", "soft", "mask", "boxes", "box_sets"]
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
    "constant",
    "step",
    "exponential",
    "cosine",
    "warmup_cosine",
    "cosine_restarts",
    "reduce_on_plateau",
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
    "inconclusive",
    "discriminator_wins",
    "mode_collapse",
    "gan_oscillation",
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
# Problems only a GAN history shows (rules/55_gan.toml), judged on engine GAN runs
# (tests/test_gan_diagnosis.py) rather than on the labelled supervised collection.
GAN_PROBLEMS: tuple[str, ...] = ("discriminator_wins", "mode_collapse", "gan_oscillation")

# The ModelPlan fields that make up a base's structure (its weights' shapes and
# what its features mean), per architecture: a plan that loads a base must
# agree with the base on these; the head, dropout and output size are free.
BACKBONE_FIELDS: dict[str, tuple[str, ...]] = {
    "mlp": ("hidden_layers", "units", "batch_norm", "activation"),
    "cnn": ("filters", "kernel_size", "pooling", "batch_norm", "activation"),
    "resnet": ("filters", "blocks_per_stage", "stage_blocks", "stem", "block", "activation"),
}
# What an unset ResNet stem and block mean.
RESNET_DEFAULTS: dict[str, str] = {"stem": "cifar", "block": "basic"}

CLASSIFICATION_TASKS = ("binary", "multiclass", "multilabel")

# History series the engine records every epoch besides loss, val_loss and the metrics.
DIAGNOSTIC_SERIES: tuple[str, ...] = (
    "lr",
    "grad_norm",
    "grad_norm_first",
    "grad_norm_last",
    "update_ratio",
    "dead_fraction",
    "epoch_time",
)


@dataclass(frozen=True)
class FactSpec:
    """What a fact is: its value type, the values it may take, and its meaning."""

    type: Literal["str", "int", "float", "bool", "list", "dict"]
    description: str
    values: tuple[str, ...] | None = None  # allowed values of a categorical fact
    unit: str | None = None


def _cat(description: str, values: tuple[str, ...]) -> FactSpec:
    return FactSpec("str", description, values)


# Facts read off a Profile (see advisor/expert/facts.py) and facts that rules derive.
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
    "targets.integral": FactSpec("bool", "measured: every training target is a whole number"),
    "targets.n_distinct": FactSpec("int", "measured: distinct training target values"),
    "targets.span": FactSpec("float", "measured: largest training target minus smallest"),
    "targets.min_per_value": FactSpec(
        "int", "measured: examples sharing the rarest target value", unit="samples"
    ),
    "targets.max_robust_z": FactSpec("float", "measured: largest modified z-score of the targets"),
    "targets.count": FactSpec("bool", "derived: the integer targets are counts, not class ids"),
    "targets.outliers": FactSpec("bool", "derived: the targets hold outliers (measured robust z)"),
    "inputs.zero_fraction": FactSpec("float", "measured: share of input values that are exactly 0"),
    "inputs.sparse": FactSpec("bool", "derived: the inputs are sparse (measured share of zeros)"),
    "margin_classifier": FactSpec(
        "bool", "the profile asks for a max-margin (SVM-like) classifier"
    ),
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
    "pretrained.input_shape": FactSpec("list", "the input shape the base was trained on"),
    "pretrained.n_params": FactSpec("int", "the base's weights, counted from its checkpoint"),
    "pretrained.model.arch": _cat("architecture of the base", get_args(ArchName)),
    "pretrained.model.hidden_layers": FactSpec("int", "mlp base: hidden dense layers"),
    "pretrained.model.units": FactSpec("int", "mlp base: width of each hidden layer"),
    "pretrained.model.filters": FactSpec(
        "list", "cnn base: filters per block; resnet base: width per stage"
    ),
    "pretrained.model.kernel_size": FactSpec("int", "cnn base: convolution kernel size"),
    "pretrained.model.pooling": _cat("cnn base: pooling after each block", ("max", "avg")),
    "pretrained.model.batch_norm": FactSpec("bool", "the base normalises each layer's batch"),
    "pretrained.model.activation": _cat("the base's hidden activation", get_args(Activation)),
    "pretrained.model.blocks_per_stage": FactSpec("int", "resnet base: residual blocks per stage"),
    "pretrained.model.stage_blocks": FactSpec("list", "resnet base: residual blocks in each stage"),
    "pretrained.model.stem": _cat("resnet base: input stem", ("cifar", "imagenet")),
    "pretrained.model.block": _cat("resnet base: residual block type", ("basic", "bottleneck")),
    "budget.max_epochs": FactSpec("int", "most epochs the user will pay for"),
    "budget.max_minutes": FactSpec("float", "wall-clock budget for training", unit="minutes"),
    "budget.device": _cat("the device the user will train on", get_args(DeviceName)),
    "has_data": FactSpec("bool", "the profile says where the data is, so the plan can run"),
    "data.kind": _cat("kind of data source", ("builtin", "npz", "csv", "image_folder")),
    "lr_find.learning_rate": FactSpec(
        "float", "learning rate suggested by an LR range test (advisor lr-find)"
    ),
    "name": FactSpec("str", "the profile's short name"),
    "n_targets": FactSpec("int", "regression: values predicted per example"),
    "sparse_inputs": FactSpec("bool", "most input values are zero (one-hot, bag-of-words)"),
    "flip_invariant": FactSpec("bool", "mirroring an image left-right keeps its label"),
    "image_side": FactSpec("int", "images: the shorter of height and width", unit="pixels"),
    "image_pixels": FactSpec("int", "images: height x width", unit="pixels"),
    "image_channels": FactSpec("int", "images: channels of one input (1 grey, 3 colour)"),
    "sequence_steps": FactSpec("int", "sequences of shape [steps, channels]: the number of steps"),
    "budget.max_trials": FactSpec("int", "training runs a hyperparameter search may use"),
    "data": FactSpec("dict", "the profile's data source, as written"),
    # --- derived by rules (rules/1*.toml ... 4*.toml) --------------------------
    "size_class": _cat(
        "how much data there is, per class where there are classes",
        ("tiny", "small", "medium", "large"),
    ),
    "transfer_size": _cat("the lecture's dataset-size axis for transfer", ("small", "large")),
    "pretrained.params_per_example": FactSpec(
        "float", "the base's weights per training example: how much data it has to adapt them"
    ),
    "pretrained.similarity_class": _cat(
        "the lecture's similarity axis, from the user's label or the measured score",
        get_args(SimilarityClass),
    ),
    "transfer_quadrant": _cat(
        "the cell of the lecture's transfer decision framework",
        ("large_similar", "large_different", "small_similar", "small_different"),
    ),
    "imbalance_class": _cat("how unequal the classes are", ("balanced", "mild", "strong")),
    "risk.overfitting": _cat("predicted risk of memorising the training set", ("low", "high")),
    "risk.underfitting": _cat("predicted risk of a model too small for the data", ("low", "high")),
    "model.params_per_sample": FactSpec(
        "float", "estimated trainable weights of the planned MLP per training example"
    ),
    "work_per_epoch": FactSpec("float", "n_train x input_size: input values seen per epoch"),
    "trial_cost": _cat("cost of one training run of a search", ("cheap", "expensive")),
    "lr.base": FactSpec("float", "learning rate of the chosen optimizer before stage scaling"),
    "lr.stage_factor": FactSpec("float", "multiplier of the base rate for the training stage"),
    "uses_early_stopping": FactSpec("bool", "the plan stops on the validation curve"),
    "needs_augmentation": FactSpec("bool", "the plan should stretch the data with augmentation"),
}


def plan_fact(path: str) -> str:
    """The fact name under which a plan field's current value is visible to rules."""
    return f"plan.{path}"


# --- diagnosis facts (advisor/diagnostics/curves.py measures them, rules/5*.toml and 6*.toml read them) ---

_LOSS_CURVE = {
    "first": ("float", "value at the first epoch"),
    "final": ("float", "value at the last epoch"),
    "best": ("float", "lowest value"),
    "best_epoch": ("int", "epoch of the lowest value"),
    "worst": ("float", "highest finite value"),
    "epochs_since_best": ("int", "epochs from the lowest value to the end"),
    "rel_drop": ("float", "(first - best) / first: how much it ever improved"),
    "rise_from_best": ("float", "smoothed end above lowest point, / (lowest + 2 % of chance loss)"),
    "rise_from_min": ("float", "end level above the lowest level held, / (lowest + damping)"),
    "final_over_first": ("float", "mean of the last 3 values / the first value"),
    "recent_improvement": (
        "float",
        "how far the smoothed curve ends below its low before the window",
    ),
    "recent_share": ("float", "share of the run's whole progress made in the recent window"),
    "noise": ("float", "epoch-to-epoch noise from second differences of log values (0.05 = 5 %)"),
    "wobble": ("float", "the same noise relative to the value + 10 % of its range or chance loss"),
    "oscillation": ("float", "fraction of epoch-to-epoch moves that reverse direction"),
    "backtrack": ("float", "upward movement / all movement (0 = monotone fall, 0.5 = no trend)"),
    "max_jump": (
        "float",
        "largest one-epoch rise, relative to the value + 10 % of range or chance",
    ),
    "linearity": ("float", "R^2 of a straight line through the curve (1 = straight)"),
    "deceleration": ("float", "fall rate over the first half / over the second (1 = straight)"),
    "final_flat_length": ("int", "epochs of the flat stretch the run ends on"),
    "plateau_length": ("int", "epochs of the longest flat stretch the curve later fell out of"),
    "plateau_start": ("int", "first epoch of that flat stretch"),
    "plateau_end": ("int", "last epoch of that flat stretch"),
    "drop_after_plateau": ("float", "how far the curve fell after that stretch, as a fraction"),
    "chance_ratio": ("float", "final value / chance-level loss (1 = no better than guessing)"),
    "peak_chance_ratio": ("float", "highest value / chance-level loss"),
    "later_peak_chance_ratio": ("float", "highest value after the first epoch / chance-level loss"),
    "last_finite": ("float", "last value before the first NaN or infinity of the run"),
    "tail_gain": ("float", "how far the last max(3, n/5) epochs fell below the best before them"),
    "tail_share": ("float", "that fall as a share of the whole run's improvement"),
    "end_over_best": ("float", "last value / lowest value - 1 (0 when within the log's rounding)"),
    "end_rise_share": ("float", "(last value - lowest) / (first - lowest): the rise, vs the range"),
    "sustained_rise": (
        "float",
        "rise above the best held 2+ later epochs beyond the noise, / best",
    ),
    "rise_share": ("float", "share of epoch-to-epoch moves that go up"),
    "max_rise": (
        "float",
        "largest one-epoch rise / (value before + 1 % of the range after the first epoch)",
    ),
    "late_max_rise": ("float", "max_rise over the moves after the run's first fifth"),
    "late_max_jump": ("float", "max_jump over the moves after the run's first fifth"),
    "median_move": ("float", "median |one-epoch change| / (value before + a tenth of the range)"),
    "epochs": ("int", "epochs with a finite value (up to the first NaN or infinity)"),
    "rounding_unit": ("float", "one unit of the last decimal the log printed (0 = full precision)"),
    "still_rising": (
        "bool",
        "the last value is above the one before it and above the first value of the tail",
    ),
}
_SCORE_CURVE = {
    "first": ("float", "value at the first epoch"),
    "final": ("float", "mean of the last 3 values"),
    "best": ("float", "highest value"),
    "best_epoch": ("int", "epoch of the highest value"),
    "drop_from_best": ("float", "best - final"),
    "recent_gain": ("float", "rise over the recent window"),
    "skill": ("float", "(final - chance) / (1 - chance): 0 = guessing, 1 = perfect"),
    "chance_margin": ("float", "final - chance accuracy (1/K)"),
    "max_gain": ("float", "largest rise from one epoch to the next"),
    "frozen_epochs": ("int", "epochs at the end that hold exactly the last value"),
}
_RUN_CURVE = {
    "n_epochs": ("int", "epochs in the history"),
    "first_epoch": ("int", "first epoch number"),
    "last_epoch": ("int", "last epoch number"),
    "has_val": ("bool", "the history has a validation loss at enough epochs (4) to have a shape"),
    "has_loss": ("bool", "the history has a training or validation loss"),
    "loss_epochs": ("int", "epochs at which a training or validation loss was logged"),
    "classes": ("int", "K of the chance level, given or inferred from the history"),
    "chance_source": (
        "str",
        "how K was found: given, metric_names, accuracy_and_loss, flat_loss, flat_accuracy",
    ),
    "nonfinite_series": ("str", "the series that first became NaN or infinite"),
    "never_computed": (
        "str",
        "series left out as never computed (NaN, empty or zero at every epoch), comma-separated",
    ),
    "last_finite_epoch": ("int", "last epoch before the first NaN or infinity"),
    "window": ("int", "epochs in the recent window (a fifth of the run, at least 3)"),
    "window_start": ("int", "first epoch of the recent window"),
    "planned_epochs": ("int", "epochs the plan asked for"),
    "hidden_width": ("int", "narrowest hidden layer of the model (an MLP's units), from the plan"),
    "stopped_early": ("bool", "the run ended before the planned epochs"),
    "lr.moved_since_best": ("bool", "the learning rate ends 5 % off its value at the best loss"),
    "lr.raises": ("int", "epochs at which the recorded learning rate rose (warmup, warm restarts)"),
    "nonfinite": ("bool", "a loss or gradient norm became NaN or infinite"),
    "nonfinite_epoch": ("int", "first epoch with a NaN or infinite loss or gradient norm"),
    "gap.final": ("float", "(val_loss - loss) / val_loss over the last 3 epochs"),
    "gap.at_val_best": ("float", "(val_loss - loss) / val_loss at the best validation epoch"),
    "gap.growth": (
        "float",
        "growth of val_loss - loss over the second half of the run, / best val_loss",
    ),
    "gap.over_train": ("float", "(val_loss - loss) / loss at the last epoch"),
    "gap.growth_since_best": (
        "float",
        "growth of val_loss - loss since the best val epoch, / gap there",
    ),
    "gap.accuracy": ("float", "training accuracy - validation accuracy at the end"),
    "loss.change_after_val_best": (
        "float",
        "relative change of the training loss from the best val epoch to the last epoch",
    ),
    "chance_loss": ("float", "cross-entropy of guessing: log K (log 2 for binary)"),
    "chance_accuracy": ("float", "accuracy of guessing: 1 / K"),
    "grad_norm.nonfinite": ("bool", "the gradient norm became NaN or infinite"),
    "grad_norm.median": ("float", "median global gradient norm"),
    "grad_norm.max": ("float", "largest global gradient norm"),
    "grad_norm.final": ("float", "global gradient norm over the last fifth of the run"),
    "grad_norm.spike": ("float", "largest gradient norm / median of the 5 epochs before it"),
    "grad_norm.growth": ("float", "gradient norm over the last fifth / over the first fifth"),
    "grad_norm.layer_ratio": ("float", "median of first-layer / last-layer gradient norm"),
    "update_ratio.median": ("float", "median of |update| / |weights| per step"),
    "update_ratio.max": ("float", "largest |update| / |weights|"),
    "dead_fraction.final": ("float", "share of hidden units that never activate, last epochs"),
    "dead_fraction.max": ("float", "largest share of hidden units that never activate"),
    "gan.is_gan": ("bool", "the history is a GAN's (d_loss and g_loss, or task gan)"),
    "gan.d_loss.final": ("float", "discriminator loss over the recent window"),
    "gan.g_loss.final": ("float", "generator loss over the recent window"),
    "gan.d_loss.over_equilibrium": (
        "float",
        "discriminator loss over the recent window / 2 log 2 (its value when it cannot tell)",
    ),
    "gan.g_loss.growth": ("float", "generator loss over the recent window / over the first window"),
    "gan.g_loss.swing": (
        "float",
        "mean epoch-to-epoch move of the generator loss / its level, second half",
    ),
    "gan.g_loss.reversals": (
        "float",
        "share of generator-loss moves that reverse direction, second half",
    ),
    "gan.diversity.final": (
        "float",
        "spread of generated samples / spread of real ones (PCA features), recent window",
    ),
    "gan.diversity.best": ("float", "highest spread of generated samples / spread of real ones"),
    "gan.fd.first": (
        "float",
        "Frechet distance of samples to real data (PCA features), first epoch",
    ),
    "gan.fd.final": ("float", "Frechet distance of samples to real data, recent window"),
    "gan.fd.best": ("float", "lowest Frechet distance of samples to real data"),
    "gan.fd.final_over_first": ("float", "Frechet distance, recent window / first epoch"),
    "gan.fd.swing": (
        "float",
        "mean epoch-to-epoch move of the Frechet distance / its level, second half",
    ),
}


def _diagnosis_facts() -> dict[str, FactSpec]:
    facts = {}
    for series in ("loss", "val_loss", "main"):
        label = "main (training loss, else validation loss)" if series == "main" else series
        for name, (kind, text) in _LOSS_CURVE.items():
            facts[f"curve.{series}.{name}"] = FactSpec(kind, f"{label}: {text}")
    for series in ("accuracy", "val_accuracy", "r2", "val_r2"):
        for name, (kind, text) in _SCORE_CURVE.items():
            facts[f"curve.{series}.{name}"] = FactSpec(kind, f"{series}: {text}")
    for name, (kind, text) in _RUN_CURVE.items():
        facts[f"curve.{name}"] = FactSpec(kind, text)
    for name, text in THRESHOLDS.items():
        facts[f"threshold.{name}"] = FactSpec("float", text)
    for name, text in ADVICE.items():
        facts[f"advice.{name}"] = FactSpec("bool", text)
    facts.update(JUDGEMENTS)
    # The revised plan's values before any fix, for fixes that must not chain on each other's output.
    facts["before.freeze.strategy"] = _cat(
        "freeze strategy of the plan being revised", FREEZE_STRATEGIES
    )
    facts["before.freeze.trainable_blocks"] = FactSpec(
        "int", "trainable_blocks of the plan being revised"
    )
    facts["before.model.dropout"] = FactSpec("float", "dropout of the plan being revised")
    facts["before.batch_size"] = FactSpec("int", "batch size of the plan being revised")
    facts["before.regularization.early_stopping.restore_best"] = FactSpec(
        "bool", "whether the plan being revised restores the best epoch's weights when it stops"
    )
    return facts


# Thresholds are facts set by rules (rules/50_thresholds.toml), so a user's rule file can move them.
THRESHOLDS = {
    "min_epochs": "fewest epochs from which a curve's shape is judged",
    "settle_epochs": "fewest epochs from which an early overshoot can be seen to have settled",
    "overfit_val_rise": "validation loss this far above its best counts as overfitting",
    "overfit_train_fall": "training loss falling this much after the best validation epoch",
    "overfit_gap": "relative generalization gap that counts as large",
    "overfit_gap_growth": "growth of the generalization gap that counts as large",
    "overfit_acc_gap": "training minus validation accuracy that counts as large",
    "noise_high": "log-space noise of the training loss that counts as oscillation",
    "backtrack_high": "share of upward movement of the training loss that counts as unstable",
    "backtrack_some": "share of upward movement of the training loss: the least sign of instability",
    "jump_high": "one-epoch rise of the training loss that counts as a spike",
    "train_rise": "training loss this far above its best counts as unstable",
    "above_chance": "training loss this many times the chance loss counts as overshooting",
    "diverge_rise": "training loss this many times its best, still rising, counts as divergence",
    "diverge_over_first": "training loss this many times its first value counts as divergence",
    "linear_r2": "R^2 above which a descent counts as a straight line",
    "linear_deceleration": "deceleration below which a descent has not started to level off",
    "lr_low_max_drop": "a straight descent that shed less than this share of its first value",
    "still_improving": "fall over the recent window that counts as still improving",
    "recent_share": "share of all progress in the recent window that counts as still improving",
    "fast_improving": "fall over the recent window that counts as still improving, whatever its share",
    "flat": "fall over the recent window below which a curve counts as flat",
    "signal_to_noise": "how many times its own noise a trend must be to count",
    "decisive_signal_to_noise": "times its noise a rise from the best must be to count",
    "overfit_strong_rise": "validation loss this far above its best counts as strong overfitting",
    "overfit_strong_acc_gap": "train minus val accuracy that counts as strong overfitting",
    "chance_ratio_high": "loss / chance loss from which a model counts as guessing",
    "chance_ratio_poor": "loss / chance loss from which the training fit counts as poor",
    "skill_low": "accuracy skill below which a model counts as guessing",
    "skill_poor": "accuracy skill below which the training fit counts as poor",
    "small_gap": "relative generalization gap below which train and val agree",
    "r2_poor": "r2 below which a regression fit counts as poor",
    "plateau_epochs": "epochs of a flat stretch that count as a plateau",
    "plateau_share": "share of the run a flat stretch must last to count as a plateau",
    "plateau_drop": "fall after a flat stretch that shows it was a plateau, not the end",
    "plateau_short_share": "share of the run a flat stretch needs when the run later fell by half",
    "plateau_clear_drop": "fall after a shorter flat stretch that shows its level clearly above",
    "grad_spike": "largest / median gradient norm that counts as an explosion",
    "grad_growth": "growth of the gradient norm over the run that counts as an explosion",
    "grad_layer_ratio": "first / last layer gradient norm below which gradients vanish",
    "update_ratio_low": "update / weight ratio below which steps are too small",
    "update_ratio_high": "update / weight ratio above which steps are too large",
    "dead_fraction": "share of dead hidden units that counts as a problem",
    "no_learning": "best loss less than this far below the first counts as no learning",
    "chance_ratio_over": "loss / chance loss up to which a model counts as guessing",
    "chance_acc_margin": "accuracy at most this far above 1/K counts as guessing",
    "healthy_drop": "relative fall of the loss a healthy run must show",
    "healthy_chance_ratio": "loss / chance loss below which a run learned materially",
    "rise_share_high": "share of upward moves of the training loss that counts as oscillation",
    "move_high": "median relative epoch-to-epoch move that counts as large",
    "rise_share_epochs": "fewest training-loss epochs on which the share of rises is judged",
    "rounding_units": "units of the last printed decimal within which a change is rounding",
    "noise_share": "share of a curve's first-minus-best range below which a change is noise",
    "slow_accuracy_gain": "largest one-epoch accuracy gain below which accuracy never moved",
    "satisfied_accuracy": "best accuracy below which a run that never moved learned nothing useful",
    "diverge_loss_level": "a classification loss this large has blown up",
    "poor_accuracy": "training accuracy below which a flat run fits its data poorly",
    "close_accuracy": "train and validation accuracy this close agree",
    "gan_d_wins": "discriminator loss / its equilibrium below which the discriminator wins",
    "gan_g_rise": "growth of the generator loss that shows it losing the game",
    "gan_diversity_low": "sample spread / real spread below which the generator collapsed",
    "gan_swing_high": "relative epoch-to-epoch move of the generator loss that counts as oscillation",
    "gan_reversals": "share of reversing moves from which a swinging loss oscillates",
    "gan_fd_gain": "Frechet distance, end / start, at most this for a GAN that learned",
    "gan_diversity_ok": "sample spread / real spread from which the samples cover the data",
}
# Judgements the rules draw from the problems found, for the rules that come after them.
JUDGEMENTS = {
    "diagnosis.unstable": FactSpec(
        "bool", "the optimisation itself was unstable (lr too high, diverged, exploding)"
    ),
    "diagnosis.confounded": FactSpec(
        "bool",
        "the instability shook the training loss too: the val curve says little of memorising",
    ),
    "diagnosis.early_overshoot": FactSpec(
        "bool", "the training loss jumped only in the run's first fifth, then settled at its best"
    ),
    "diagnosis.constant_predictions": FactSpec(
        "bool", "the accuracy never changed all run: one class predicted for every example"
    ),
    "diagnosis.train_loss_noise": FactSpec(
        "bool", "train loss went far above guessing, validation never did (dropout noise)"
    ),
    "diagnosis.primary": _cat(
        "the problem a careful reader names first (rules/50_problems.toml, precedence)",
        PROBLEMS,
    ),
    "diagnosis.overfitting_strong": FactSpec(
        "bool", "overfitting strong (or mild cures spent) enough for the full regularisation bundle"
    ),
}
ADVICE = {
    "more_data": "collect or synthesise more training examples",
    "lr_range_test": "run an LR range test (advisor lr-find) to place the learning rate",
    "check_data": "check the inputs and targets for NaN, infinities and unscaled values",
    "he_init": "initialise ReLU layers with He (Kaiming) initialisation",
    "longer_run": "the run is too short to judge its shape; train longer before diagnosing",
    "stabilise_first": "overfitting fixes wait until a run with stable optimisation shows it again",
    "finish_run": "the run ended before its planned epochs, not by early stopping; finish it",
    "log_validation": "log a validation loss every epoch: without it overfitting cannot be judged",
    "log_loss": "log the training and validation loss: accuracy alone cannot show the fit",
    "check_labels": "check that the labels match the inputs (shuffled apart, one class)",
    "settle_slow_tail": "the watched curve still gains slowly: run longer or stop on patience",
}
FACTS.update(_diagnosis_facts())
