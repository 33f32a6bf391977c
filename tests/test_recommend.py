"""recommend(): every lecture table row reached, golden plans, complete explanations.

``LECTURE_ROWS`` is the specification turned into a table: for every row of
every table in the lecture (and the lists of sections 5, 6, 8 and 10), a
profile on which it applies, the plan field (or derived fact) it decides, the
value the advisor must recommend, and the rule whose explanation must name it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.contract.errors import RuleError
from advisor.contract.schemas import Plan, Profile
from advisor.expert.facts import profile_facts, unflatten
from advisor.expert.inference import infer
from advisor.expert.recommending import assemble_plan, recommend, recommend_rules

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

TAB = {
    "task": "multiclass",
    "modality": "tabular",
    "n_train": 1437,
    "input_shape": [64],
    "n_classes": 10,
}
SMALL_TAB = {**TAB, "n_train": 300}
IMG = {
    "task": "multiclass",
    "modality": "image",
    "n_train": 1437,
    "input_shape": [8, 8, 1],
    "n_classes": 10,
}
SMALL_IMG = {**IMG, "n_train": 300}
BIG_IMG = {
    "task": "multiclass",
    "modality": "image",
    "n_train": 50000,
    "input_shape": [32, 32, 3],
    "n_classes": 10,
}
REG = {"task": "regression", "modality": "tabular", "n_train": 353, "input_shape": [10]}
BIG_REG = {**REG, "n_train": 20000}
BIN = {"task": "binary", "modality": "tabular", "n_train": 455, "input_shape": [30], "n_classes": 2}
GAN = {"task": "gan", "modality": "image", "n_train": 1437, "input_shape": [8, 8, 1]}
DET = {
    "task": "detection",
    "modality": "image",
    "n_train": 2000,
    "input_shape": [32, 32, 1],
    "n_classes": 3,
}
SPARSE = {
    "task": "binary",
    "modality": "tabular",
    "n_train": 1000,
    "input_shape": [5000],
    "n_classes": 2,
    "sparse_inputs": True,
}
SEQ = {
    "task": "multiclass",
    "modality": "sequence",
    "n_train": 1437,
    "input_shape": [8, 8],
    "n_classes": 10,
}
IRIS = {
    "task": "multiclass",
    "modality": "tabular",
    "n_train": 120,
    "input_shape": [4],
    "n_classes": 3,
}
ONE_BATCH = {**IRIS, "n_train": 30}
BIG_SEQ_REG = {
    "task": "regression",
    "modality": "sequence",
    "n_train": 20000,
    "input_shape": [3, 10],
}
BIG_BASE = {
    "task": "multiclass",
    "modality": "image",
    "n_train": 400,
    "input_shape": [64, 64, 3],
    "n_classes": 4,
    "pretrained": {"base": "runs/bases/resnet18", "n_params": 11_700_000, "similarity": "similar"},
}
IMBALANCED = {**BIN, "n_train": 1000, "class_counts": [900, 100]}
SEVERE = {**BIN, "n_train": 1020, "class_counts": [1000, 20]}


def transfer(n_train: int, similarity=None, **extra) -> dict:
    pretrained = {"base": "runs/bases/digits_0to4"}
    if similarity is not None:
        pretrained["similarity"] = similarity
    return {
        "task": "multiclass",
        "modality": "image",
        "n_train": n_train,
        "input_shape": [8, 8, 1],
        "n_classes": 5,
        "pretrained": pretrained,
        **extra,
    }


# (lecture row, profile, plan field or derived fact, value, rule that must explain it)
LECTURE_ROWS = [
    # 2.2 network structure
    ("2.2 hidden layers", TAB, "model.hidden_layers", 2, "mlp_size_medium"),
    ("13 width from the features (medium)", TAB, "model.units", 256, "mlp_size_medium"),
    (
        "2.2 hidden layers (tiny data)",
        {**TAB, "n_train": 50, "n_classes": 5},
        "model.hidden_layers",
        1,
        "mlp_size_tiny",
    ),
    ("2.2 number of filters", IMG, "model.filters", [32, 64], "cnn_filters_medium_data"),
    (
        "2.2 number of filters (small data)",
        SMALL_IMG,
        "model.filters",
        [16, 32],
        "cnn_filters_small_data",
    ),
    ("2.2 activation", TAB, "model.activation", "relu", "activation_relu_default"),
    ("2.2 activation (GAN)", GAN, "model.activation", "leaky_relu", "activation_leaky_relu_gan"),
    ("2.2 dropout", TAB, "model.dropout", 0.2, "dropout_medium_data"),
    ("2.2 dropout (overfitting risk)", SMALL_IMG, "model.dropout", 0.4, "dropout_overfitting"),
    # 2.2 network training
    ("2.2 batch size", TAB, "batch_size", 32, "batch_size_sized_to_data"),
    ("2.2 epochs", TAB, "epochs", math.ceil(4000 / 45), "epochs_sized_to_steps"),
    ("2.2 learning rate", TAB, "optimizer.learning_rate", 0.001, "learning_rate_from_stage"),
    ("2.2 momentum", BIG_IMG, "optimizer.momentum", 0.9, "optimizer_sgd_momentum"),
    # 3.1 loss functions by problem type
    ("3.1 regression: MSE", REG, "loss.name", "mse", "loss_regression_mse"),
    (
        "3.1 regression: MAE",
        {**REG, "metric": "mae"},
        "loss.name",
        "mae",
        "loss_regression_mae_metric",
    ),
    (
        "3.1 regression: Huber for outliers",
        {**REG, "targets_have_outliers": True},
        "loss.name",
        "huber",
        "loss_regression_huber_outliers",
    ),
    (
        "3.1 regression: Huber delta",
        {**REG, "targets_have_outliers": True},
        "loss.params",
        {"delta": 1.0},
        "loss_params_huber",
    ),
    (
        "3.1 binary: binary cross-entropy",
        BIN,
        "loss.name",
        "binary_crossentropy",
        "loss_binary_crossentropy",
    ),
    (
        "3.1 binary: hinge",
        {**BIN, "margin_classifier": True},
        "loss.name",
        "hinge",
        "loss_binary_hinge_margin",
    ),
    ("3.1 binary: focal", SEVERE, "loss.name", "focal", "loss_binary_focal_imbalance"),
    (
        "3.1 binary: focal parameters",
        SEVERE,
        "loss.params",
        {"gamma": 2.0, "alpha": 0.25},
        "loss_params_focal",
    ),
    (
        "3.1 binary: dice",
        {
            "task": "binary",
            "modality": "image",
            "n_train": 400,
            "input_shape": [32, 32, 1],
            "n_classes": 2,
            "label_encoding": "mask",
        },
        "loss.name",
        "dice",
        "loss_binary_dice_masks",
    ),
    (
        "3.1 multi-class: categorical CE",
        {**TAB, "label_encoding": "one_hot"},
        "loss.name",
        "categorical_crossentropy",
        "loss_multiclass_cce_one_hot",
    ),
    (
        "3.1 multi-class: sparse CCE",
        TAB,
        "loss.name",
        "sparse_categorical_crossentropy",
        "loss_multiclass_sparse_cce",
    ),
    (
        "3.1 multi-class: KL divergence",
        {**TAB, "label_encoding": "soft"},
        "loss.name",
        "kl_divergence",
        "loss_multiclass_kl_soft",
    ),
    ("3.1 GAN: adversarial", GAN, "loss.name", "adversarial", "loss_gan_adversarial"),
    (
        "3.1 GAN: Wasserstein",
        {**GAN, "gan_objective": "wasserstein"},
        "loss.name",
        "wasserstein",
        "loss_gan_wasserstein",
    ),
    (
        "3.1 GAN: L1",
        {**GAN, "gan_reconstruction": "l1"},
        "loss.terms",
        [{"name": "l1", "weight": 100.0, "params": {}}],
        "loss_gan_l1_reconstruction",
    ),
    (
        "3.1 GAN: L2",
        {**GAN, "gan_reconstruction": "l2"},
        "loss.terms",
        [{"name": "l2", "weight": 100.0, "params": {}}],
        "loss_gan_l2_reconstruction",
    ),
    ("3.1 detection: GIoU", DET, "loss.name", "giou", "loss_detection_giou"),
    (
        "3.1 detection: smooth L1",
        {**DET, "n_train": 150},
        "loss.name",
        "smooth_l1",
        "loss_detection_smooth_l1_small",
    ),
    (
        "3.1 detection: IoU",
        {
            **DET,
            "n_train": 300,
            "pretrained": {"base": "runs/bases/shapes", "similarity": "similar"},
        },
        "loss.name",
        "iou",
        "loss_detection_iou_fine_tune",
    ),
    (
        "3.1 detection: focal",
        DET,
        "loss.terms",
        [{"name": "focal", "weight": 1.0, "params": {"gamma": 2.0, "alpha": 0.25}}],
        "loss_detection_focal_class_term",
    ),
    # 4.2 optimizers
    ("4.2 gradient descent", ONE_BATCH, "optimizer.name", "gd", "optimizer_gd_full_batch"),
    ("4.2 SGD", BIG_IMG, "optimizer.name", "sgd", "optimizer_sgd_large_images"),
    ("4.2 Adagrad", SPARSE, "optimizer.name", "adagrad", "optimizer_adagrad_sparse"),
    ("4.2 RMSprop", SEQ, "optimizer.name", "rmsprop", "optimizer_rmsprop_sequences"),
    (
        "4.2 Adadelta",
        {**SPARSE, "n_train": 40000},
        "optimizer.name",
        "adadelta",
        "optimizer_adadelta_sparse_long",
    ),
    ("4.2 Adam (the default)", TAB, "optimizer.name", "adam", "optimizer_adam_default"),
    (
        "4.2 AdamW (weight decay)",
        SMALL_IMG,
        "optimizer.name",
        "adamw",
        "optimizer_adamw_overfitting",
    ),
    # 5.1 learning rate, per optimizer and per stage
    ("5.1 rate per optimizer: Adam", TAB, "lr.base", 0.001, "lr_base_adam"),
    (
        "5.1 rate per optimizer: SGD, scaled to the batch",
        BIG_IMG,
        "lr.base",
        0.1,
        "lr_base_sgd_linear_scaling",
    ),
    ("5.1 rate per optimizer: Adagrad", SPARSE, "lr.base", 0.01, "lr_base_adagrad"),
    (
        "5.1 rate per optimizer: Adadelta",
        {**SPARSE, "n_train": 40000},
        "lr.base",
        1.0,
        "lr_base_adadelta",
    ),
    ("5.1 rate per optimizer: gradient descent", ONE_BATCH, "lr.base", 0.1, "lr_base_gd"),
    ("5.1 rate per optimizer: RMSprop", SEQ, "lr.base", 0.001, "lr_base_rmsprop"),
    (
        "5.1 rate per stage: fine-tuning",
        transfer(100, "different", budget={"max_epochs": 20}),
        "lr.stage_factor",
        0.1,
        "lr_stage_fine_tune",
    ),
    (
        "5.1 rate per stage: fine-tuning rate",
        transfer(100, "different", budget={"max_epochs": 20}),
        "optimizer.learning_rate",
        0.0001,
        "learning_rate_from_stage",
    ),
    (
        "5.1 measured rate (LR range test)",
        {**TAB, "lr_find": {"learning_rate": 0.003}},
        "optimizer.learning_rate",
        0.003,
        "learning_rate_from_range_test",
    ),
    ("5.1 schedule", TAB, "schedule.name", "cosine", "schedule_cosine_default"),
    (
        "5.1 schedule: step for SGD",
        {
            "task": "binary",
            "modality": "image",
            "n_train": 4000,
            "input_shape": [32, 32, 3],
            "n_classes": 2,
        },
        "schedule.name",
        "step",
        "schedule_step_sgd",
    ),
    (
        "5.1 schedule: warm-up for large batches",
        BIG_IMG,
        "schedule.name",
        "warmup_cosine",
        "schedule_warmup_large_batch",
    ),
    (
        "5.1 schedule: exponential for RMSprop",
        SEQ,
        "schedule.name",
        "exponential",
        "schedule_exponential_rmsprop",
    ),
    (
        "5.1 schedule: constant for Adagrad",
        SPARSE,
        "schedule.name",
        "constant",
        "schedule_constant_adaptive_decay",
    ),
    # 5.2 plateaus: local minima and saddle points
    (
        "5.2 plateau handling",
        {**TAB, "budget": {"max_minutes": 10}},
        "schedule.name",
        "reduce_on_plateau",
        "schedule_plateau_time_budget",
    ),
    (
        "5.2 plateau patience",
        {**TAB, "budget": {"max_minutes": 10}},
        "schedule.patience",
        5,
        "schedule_plateau_patience_from_early_stopping",
    ),
    (
        "5.2 saddle points: Nesterov momentum",
        BIG_IMG,
        "optimizer.nesterov",
        True,
        "optimizer_sgd_momentum",
    ),
    (
        "5.2 local minima: warm restarts",
        ONE_BATCH,
        "schedule.name",
        "cosine_restarts",
        "schedule_restarts_gd",
    ),
    # 6.0 training configuration
    ("6.0 batch_size: full batch for GD", ONE_BATCH, "batch_size", 30, "batch_size_full_batch_gd"),
    (
        "6.0 epochs within the budget",
        {**TAB, "budget": {"max_epochs": 10}},
        "epochs",
        10,
        "epochs_capped_by_budget",
    ),
    (
        "6.0 steps_per_epoch",
        TAB,
        "steps_per_epoch",
        math.ceil(1437 / 32),
        "steps_per_epoch_derived",
    ),
    ("6.0 class_mode binary", BIN, "class_mode", "binary", "class_mode_binary"),
    ("6.0 class_mode categorical", TAB, "class_mode", "categorical", "class_mode_categorical"),
    # 7.1 search methodologies
    (
        "7.1 grid search",
        {**TAB, "budget": {"max_trials": 6}},
        "search.method",
        "grid",
        "search_grid_few_trials",
    ),
    (
        "7.1 random search",
        {**TAB, "budget": {"max_trials": 30}},
        "search.method",
        "random",
        "search_random_many_trials",
    ),
    (
        "7.1 probabilistic search",
        {**BIG_IMG, "budget": {"max_trials": 20}},
        "search.method",
        "tpe",
        "search_tpe_expensive_trials",
    ),
    (
        "7.1 search space",
        {**TAB, "budget": {"max_trials": 6}},
        "search.space",
        {
            "optimizer.learning_rate": {
                "type": "categorical",
                "low": None,
                "high": None,
                "log": False,
                "choices": [0.0003, 0.001, 0.003],
            },
            "model.dropout": {
                "type": "categorical",
                "low": None,
                "high": None,
                "log": False,
                "choices": [0.0, 0.3],
            },
        },
        "search_space_grid",
    ),
    # 8.1 overfitting, 8.2 underfitting
    (
        "8.1 overfitting: early stopping",
        TAB,
        "regularization.early_stopping.patience",
        10,
        "early_stopping_patience",
    ),
    (
        "8.1 overfitting: early stopping on validation",
        TAB,
        "regularization.early_stopping.monitor",
        "val_loss",
        "early_stopping_val_loss",
    ),
    (
        "8.1 overfitting: data augmentation",
        SMALL_IMG,
        "regularization.augmentation",
        [{"name": "shift", "strength": 0.1}, {"name": "rotate", "strength": 10.0}],
        "augment_images_geometric",
    ),
    (
        "8.1 overfitting: weight decay",
        SMALL_IMG,
        "optimizer.weight_decay",
        0.05,
        "weight_decay_adamw_high_risk",
    ),
    (
        "8.1 overfitting risk predicted",
        SMALL_TAB,
        "risk.overfitting",
        "high",
        "risk_overfitting_small_data",
    ),
    (
        "8.1 overfitting risk: big model, few rows",
        {
            "task": "binary",
            "modality": "tabular",
            "n_train": 4000,
            "input_shape": [20000],
            "n_classes": 2,
        },
        "risk.overfitting",
        "high",
        "risk_overfitting_big_model",
    ),
    (
        "8.2 underfitting: more complexity",
        BIG_SEQ_REG,
        "model.hidden_layers",
        4,
        "underfit_deeper_mlp",
    ),
    ("8.2 underfitting: more parameters", BIG_SEQ_REG, "model.units", 512, "underfit_wider_mlp"),
    (
        "8.2 underfitting: more epochs",
        BIG_REG,
        "epochs",
        math.ceil(8000 / math.ceil(20000 / 256)),
        "underfit_more_epochs",
    ),
    (
        "8.2 underfitting risk predicted",
        BIG_REG,
        "risk.underfitting",
        "high",
        "risk_underfitting_large_data",
    ),
    # 9.2 transfer-learning decision framework
    ("9.2 size axis", transfer(100, "similar"), "transfer_size", "small", "transfer_size_small"),
    (
        "9.2 similarity axis from a score",
        transfer(100, 0.85),
        "pretrained.similarity_class",
        "similar",
        "similarity_score_similar",
    ),
    # (with no room for a second stage: without a tight budget the measured refinements below win)
    (
        "9.2 large + similar: freeze base, train classifier",
        transfer(720, "similar", budget={"max_epochs": 20}),
        "freeze.strategy",
        "freeze_base",
        "freeze_large_similar_freeze_base",
    ),
    (
        "9.2 large + different: train from scratch",
        transfer(720, "different"),
        "freeze.strategy",
        "from_scratch",
        "freeze_large_different_from_scratch",
    ),
    (
        "9.2 small + similar: feature extractor",
        transfer(100, "similar"),
        "freeze.strategy",
        "feature_extractor",
        "freeze_small_similar_feature_extractor",
    ),
    (
        "9.2 small + different: partial fine-tuning",
        transfer(100, "different", budget={"max_epochs": 20}),
        "freeze.strategy",
        "partial_fine_tune",
        "freeze_small_different_partial",
    ),
    (
        "9.2 large + similar, measured: freeze base, then all",
        transfer(720, "similar"),
        "freeze.fine_tune_lr_factor",
        1.0,
        "transfer_refine_large_similar_fine_tune",
    ),
    (
        "9.2 small + different, measured: partial, then all",
        transfer(100, "different"),
        "freeze.trainable_blocks",
        1,
        "transfer_refine_small_different_fine_tune",
    ),
    # 10.1 fine-tuning strategies
    (
        "10.1 train the entire model",
        transfer(720, "different", budget={"max_epochs": 10}),
        "freeze.strategy",
        "full_fine_tune",
        "freeze_full_fine_tune_tight_budget",
    ),
    (
        "10.1 partial freeze and train",
        transfer(100, "different", budget={"max_epochs": 20}),
        "freeze.trainable_blocks",
        1,
        "freeze_small_different_partial",
    ),
    (
        "10.1 freeze base, train head, then all",
        transfer(100),
        "freeze.strategy",
        "two_stage",
        "freeze_two_stage_unknown_similarity",
    ),
    (
        "10.1 head stage length",
        transfer(100),
        "freeze.head_epochs",
        80,
        "freeze_two_stage_head_epochs",
    ),
    # 10.2 implementation tips
    (
        "10.2 choose related tasks",
        transfer(720, "different"),
        "transfer_quadrant",
        "large_different",
        "quadrant_large_different",
    ),
    (
        "10.2 select appropriate architecture",
        transfer(100, "similar"),
        "model.base",
        "runs/bases/digits_0to4",
        "transfer_use_base",
    ),
    (
        "10.2 modify output layers",
        transfer(100, "similar"),
        "model.head_units",
        [64],
        "transfer_new_head_small",
    ),
    (
        "10.2 monitor validation performance",
        transfer(720, "similar"),
        "regularization.early_stopping.patience",
        5,
        "transfer_monitor_validation",
    ),
    ("10.2 use dropout", transfer(720, "similar"), "model.dropout", 0.3, "transfer_head_dropout"),
    (
        "10.2 use augmentation",
        transfer(720, "similar"),
        "needs_augmentation",
        True,
        "transfer_augment",
    ),
    (
        "10.2 cached features are not augmented",
        transfer(100, "similar"),
        "regularization.augmentation",
        [],
        "transfer_no_augment_cached_features",
    ),
    # issue 13: what the regret benchmark (benchmarks/regret.py) showed wrong
    (
        "13 class weights from 5:1",
        IMBALANCED,
        "loss.class_weights",
        "balanced",
        "loss_class_weights_imbalance",
    ),
    (
        "13 no focal below 50:1",
        IMBALANCED,
        "loss.name",
        "binary_crossentropy",
        "loss_binary_crossentropy",
    ),
    ("13 cosine ends at a floor", TAB, "schedule.min_ratio", 0.1, "schedule_min_ratio_default"),
    (
        "13 epochs from a floor on updates",
        REG,
        "epochs",
        math.ceil(4000 / math.ceil(353 / 16)),
        "epochs_sized_to_steps",
    ),
    (
        "13 gradient descent only for one batch",
        IRIS,
        "optimizer.name",
        "adamw",
        "optimizer_adamw_overfitting",
    ),
    (
        "13 regression tables: no dropout",
        {**REG, "n_train": 1920, "input_shape": [23]},
        "model.dropout",
        0.0,
        "dropout_none_tabular_regression",
    ),
    (
        "13 small regression tables: light dropout",
        REG,
        "model.dropout",
        0.15,
        "dropout_overfitting_tabular",
    ),
    (
        "13 small tables: light dropout",
        SMALL_TAB,
        "model.dropout",
        0.15,
        "dropout_overfitting_tabular",
    ),
    (
        "13 small tables: no input noise",
        SMALL_TAB,
        "regularization.augmentation",
        [],
        "augment_none_default",
    ),
    (
        "13 small tables: decay not escalated",
        SMALL_TAB,
        "optimizer.weight_decay",
        0.01,
        "weight_decay_adamw",
    ),
    ("13 width from the features", SMALL_TAB, "model.units", 128, "mlp_size_small"),
    ("13 width from the features (few)", REG, "model.units", 64, "mlp_size_small"),
    ("13 large tables: no grown network", BIG_REG, "model.units", 256, "mlp_size_large"),
    (
        "13 trees as a baseline for small tables",
        REG,
        "baselines",
        ["hist_gradient_boosting"],
        "baseline_trees_small_tables",
    ),
    ("13 no tree baseline for images", IMG, "baselines", [], "baselines_none_default"),
    (
        "13 full-batch descent: a floor on updates",
        ONE_BATCH,
        "epochs",
        1000,
        "epochs_full_batch_gd",
    ),
    (
        "13 focal for many classes only from 50:1",
        {
            **TAB,
            "n_train": 1110,
            "input_shape": [8],
            "n_classes": 3,
            "class_counts": [1000, 100, 10],
        },
        "loss.name",
        "focal",
        "loss_multiclass_focal_imbalance",
    ),
    (
        "13 input noise for sequences only",
        {**SEQ, "n_train": 300},
        "regularization.augmentation",
        [{"name": "noise", "strength": 0.05}],
        "augment_sequence_noise",
    ),
    (
        "13 the base's weights per example",
        BIG_BASE,
        "pretrained.params_per_example",
        11_700_000 / 400,
        "transfer_params_per_example",
    ),
    (
        "13 transfer size against the base",
        BIG_BASE,
        "transfer_size",
        "small",
        "transfer_size_small_for_the_base",
    ),
    (
        "13 transfer size against the base: features",
        BIG_BASE,
        "freeze.strategy",
        "feature_extractor",
        "freeze_small_similar_feature_extractor",
    ),
    (
        "13 a base the data can move stays large",
        transfer(720, "similar", budget={"max_epochs": 20}),
        "transfer_size",
        "large",
        "transfer_size_large",
    ),
]


def plan_for(profile: dict) -> Plan:
    return recommend(profile)


@pytest.mark.parametrize(
    ("profile", "field", "value", "rule"),
    [row[1:] for row in LECTURE_ROWS],
    ids=[row[0] for row in LECTURE_ROWS],
)
def test_lecture_row(profile, field, value, rule):
    plan = plan_for(profile)
    explanation = plan.explanations.get(field) or plan.derived_facts.get(field)
    assert explanation is not None, f"{field} has no explanation"
    assert explanation.rule == rule
    if field in plan.explanations:  # a plan field: the plan holds the value
        actual = plan.model_dump(mode="json")
        for part in field.split("."):
            actual = actual[part]
        assert actual == value
    else:  # a derived fact: its explanation holds the value
        assert explanation.value == value


def test_every_lecture_table_row_has_a_test_row():
    sections = {row[0].split()[0] for row in LECTURE_ROWS}
    assert {
        "2.2",
        "3.1",
        "4.2",
        "5.1",
        "5.2",
        "6.0",
        "7.1",
        "8.1",
        "8.2",
        "9.2",
        "10.1",
        "10.2",
    } <= sections
    losses = {row[3] for row in LECTURE_ROWS if row[2] == "loss.name"} | {
        term["name"] for row in LECTURE_ROWS if row[2] == "loss.terms" for term in row[3]
    }
    assert losses == {
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
    }
    optimizers = {row[3] for row in LECTURE_ROWS if row[2] == "optimizer.name"}
    assert optimizers == {"gd", "sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw"}
    strategies = {row[3] for row in LECTURE_ROWS if row[2] == "freeze.strategy"}
    assert strategies == {
        "freeze_base",
        "from_scratch",
        "feature_extractor",
        "partial_fine_tune",
        "full_fine_tune",
        "two_stage",
    }
    methods = {row[3] for row in LECTURE_ROWS if row[2] == "search.method"}
    assert methods == {"grid", "random", "tpe"}


def test_the_chain_from_size_to_fine_tuning_rate():
    """n_train, n_classes -> size class -> quadrant -> freeze strategy -> fine-tuning rate."""
    plan = plan_for(transfer(100, "different", budget={"max_epochs": 20}))
    facts = plan.derived_facts
    assert facts["size_class"].matched == {"samples_per_class": 20.0}
    assert facts["transfer_size"].matched["size_class"] == "small"
    assert facts["transfer_quadrant"].matched == {
        "pretrained.similarity_class": "different",
        "transfer_size": "small",
    }
    assert plan.explanations["freeze.strategy"].matched == {"transfer_quadrant": "small_different"}
    assert facts["lr.stage_factor"].matched == {"plan.freeze.strategy": "partial_fine_tune"}
    assert plan.explanations["optimizer.learning_rate"].matched == {
        "lr.base": 0.001,
        "lr.stage_factor": 0.1,
    }


def test_explanations_name_the_rules_that_lost():
    plan = plan_for({**TAB, "lr_find": {"learning_rate": 0.003}})
    losers = plan.explanations["optimizer.learning_rate"].overridden
    assert [(o.rule, o.value) for o in losers] == [("learning_rate_from_stage", 0.001)]


# ----------------------------------------------------------------------------- golden plans

PROFILE_FILES = sorted((EXAMPLES / "profiles").glob("*.json"))


def test_there_are_enough_example_profiles():
    profiles = [Profile.model_validate_json(p.read_text()) for p in PROFILE_FILES]
    assert len(profiles) >= 8
    assert {p.task for p in profiles} == {
        "regression",
        "binary",
        "multiclass",
        "multilabel",
        "gan",
        "detection",
    }
    quadrants = {
        recommend(p).derived_facts["transfer_quadrant"].value for p in profiles if p.pretrained
    }
    assert quadrants == {"large_similar", "large_different", "small_similar", "small_different"}
    facts = [profile_facts(p) for p in profiles]
    assert any(f.get("imbalance_ratio", 1) >= 5 for f in facts)
    assert any(f.get("samples_per_class", 1e9) < 20 for f in facts)


@pytest.mark.parametrize("profile", PROFILE_FILES, ids=[p.stem for p in PROFILE_FILES])
def test_golden_plan(profile):
    expected = json.loads((EXAMPLES / "plans" / profile.name).read_text())
    assert recommend(profile).model_dump(mode="json") == expected, (
        "run python examples/regenerate.py"
    )


def test_regenerate_reports_no_drift():
    import runpy

    module = runpy.run_path(str(EXAMPLES / "regenerate.py"))
    assert module["drifted"]() == []


@pytest.mark.parametrize("profile", PROFILE_FILES, ids=[p.stem for p in PROFILE_FILES])
def test_every_value_of_a_plan_is_explained(profile):
    assert unexplained(recommend(profile)) == []


@pytest.mark.parametrize("profile", PROFILE_FILES, ids=[p.stem for p in PROFILE_FILES])
def test_trainable_examples_carry_data_that_runs_offline(profile):
    loaded = Profile.model_validate_json(profile.read_text())
    assert loaded.data is not None and loaded.data.kind == "builtin"


def unexplained(plan: Plan) -> list[str]:
    """Plan leaves with a value but no explanation of their own or of a parent."""
    missing = []

    def walk(value, path):
        if path and any(p in plan.explanations for p in prefixes(path)):
            return
        if isinstance(value, dict) and value:
            for key, sub in value.items():
                walk(sub, f"{path}.{key}" if path else key)
        elif value is not None:
            missing.append(path)

    walk(
        plan.model_dump(mode="json", exclude={"explanations", "derived_facts", "format_version"}),
        "",
    )
    return missing


def prefixes(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts) + 1)]


# ----------------------------------------------------------------------------- any well-formed profile

shapes_by_modality = {
    "tabular": st.lists(st.integers(1, 3000), min_size=1, max_size=1),
    "sequence": st.one_of(
        st.lists(st.integers(1, 64), min_size=2, max_size=2),
        st.lists(st.integers(1, 200), min_size=1, max_size=1),
    ),
    "image": st.one_of(
        st.tuples(st.integers(1, 64), st.integers(1, 64), st.sampled_from([1, 3])).map(list),
        st.lists(st.integers(1, 64), min_size=2, max_size=2),
    ),
}


@st.composite
def well_formed_profiles(draw) -> dict:
    task = draw(
        st.sampled_from(["regression", "binary", "multiclass", "multilabel", "gan", "detection"])
    )
    modality = (
        "image"
        if task in ("gan", "detection")
        else draw(st.sampled_from(["tabular", "sequence", "image"]))
    )
    shape = draw(shapes_by_modality[modality])
    profile: dict = {
        "task": task,
        "modality": modality,
        "n_train": draw(st.integers(1, 200_000)),
        "input_shape": shape,
    }
    if task == "binary":
        profile["n_classes"] = 2
    elif task in ("multiclass", "multilabel", "detection"):
        profile["n_classes"] = draw(st.integers(2, 200))
    if task == "multiclass":
        profile["label_encoding"] = draw(st.sampled_from(["integer", "one_hot", "soft"]))
    if (
        task in ("binary", "multiclass")
        and modality == "image"
        and len(shape) == 3
        and draw(st.booleans())
    ):
        profile["label_encoding"] = "mask"
    if task in ("binary", "multiclass") and draw(st.booleans()):
        profile["imbalance_ratio"] = draw(st.floats(1, 50))
    if task == "regression":
        profile["targets_have_outliers"] = draw(st.booleans())
        profile["metric"] = draw(st.sampled_from(["mae", "rmse"]))
    if task == "binary":
        profile["margin_classifier"] = draw(st.booleans())
    if task == "gan":
        profile["gan_objective"] = draw(st.sampled_from(["standard", "wasserstein"]))
        profile["gan_reconstruction"] = draw(st.sampled_from(["none", "l1", "l2"]))
    profile["sparse_inputs"] = modality == "tabular" and draw(st.booleans())
    profile["flip_invariant"] = modality == "image" and draw(st.booleans())
    if draw(st.booleans()):
        profile["pretrained"] = {
            "base": "runs/bases/b",
            "similarity": draw(
                st.one_of(st.none(), st.sampled_from(["similar", "different"]), st.floats(0, 1))
            ),
        }
    if draw(st.booleans()):
        profile["budget"] = {
            "max_epochs": draw(st.one_of(st.none(), st.integers(1, 500))),
            "max_minutes": draw(st.one_of(st.none(), st.floats(0.5, 600))),
            "max_trials": draw(st.one_of(st.none(), st.integers(1, 100))),
            "device": draw(st.sampled_from(["auto", "cpu", "gpu", "tpu"])),
        }
    if draw(st.booleans()):
        profile["lr_find"] = {"learning_rate": draw(st.floats(1e-5, 1.0))}
    return profile


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(well_formed_profiles())
def test_any_well_formed_profile_gets_a_complete_explained_plan(profile):
    plan = recommend(profile)
    assert unexplained(plan) == []
    assert plan.steps_per_epoch == math.ceil(plan.n_train / plan.batch_size)
    assert 1 <= plan.batch_size <= plan.n_train
    if plan.optimizer.name == "gd":
        assert plan.batch_size == plan.n_train
    budget = (profile.get("budget") or {}).get("max_epochs")
    if budget is not None:
        assert plan.epochs <= budget
    if plan.freeze.strategy != "from_scratch":
        assert plan.model.base == "runs/bases/b"


# ----------------------------------------------------------------------------- rule errors


def test_a_rule_that_sets_an_invalid_value_is_named(tmp_path):
    (tmp_path / "bad.toml").write_text(
        '[bad_units]\nrecommend = { "model.units" = 0 }\npriority = 99\n'
        'reason = "A deliberately wrong rule."\nsource = "test"\n'
    )
    with pytest.raises(RuleError) as err:
        recommend(TAB, rules_dirs=[tmp_path])
    assert str(err.value) == (
        "profile: the rules made an invalid plan: model.units: 0 is out of range; expected a value "
        "greater than or equal to 1; set by rule [bad_units] in bad.toml"
    )


def test_a_field_no_rule_sets_is_reported():
    rules = [rule for rule in recommend_rules() if not rule.recommend.keys() & {"loss.name"}]
    with pytest.raises(RuleError) as err:
        assemble_plan(infer(profile_facts(Profile.model_validate(TAB)), rules))
    assert str(err.value) == (
        "profile: the rules made an invalid plan: loss.name: required field is missing; "
        "no rule sets this field for this profile: add one to the knowledge base"
    )


def test_extra_rules_can_override_the_builtin_ones(tmp_path):
    (tmp_path / "team.toml").write_text(
        '[team_prefers_sgd]\nrecommend = { "optimizer.name" = "sgd" }\npriority = 99\n'
        'reason = "Our team standardises on SGD."\nsource = "team handbook"\n'
    )
    plan = recommend(TAB, rules_dirs=[tmp_path])
    assert plan.optimizer.name == "sgd"
    assert plan.explanations["optimizer.name"].rule == "team_prefers_sgd"
    assert plan.optimizer.momentum == 0.9  # the chain follows the new choice


def test_dotted_examples_unflatten():
    assert unflatten({"pretrained.base": "b", "task": "gan"}) == {
        "pretrained": {"base": "b"},
        "task": "gan",
    }
