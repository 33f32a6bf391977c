"""Metrics by name against scikit-learn on random data, through metric_fn per task."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import softmax
from sklearn import metrics as sk

from advisor.contract.errors import InputError, UnknownNameError
from engine.optim.metrics import METRICS, TASK_METRICS, metric_fn

pytestmark = pytest.mark.usefixtures("strict_jax")

RNG = np.random.default_rng(0)
N, K = 200, 6


def _ours(name, task, outputs, targets):
    value = jax.jit(metric_fn(name, task))(jnp.asarray(outputs), jnp.asarray(targets))
    return np.asarray(value) if value.ndim else float(value)  # label_* give one value per label


# binary: one logit per example, {0,1} float targets [N, 1]; scores rounded so ties occur
BIN_LOGITS = np.round(RNG.normal(size=(N, 1)), 1).astype(np.float32)
BIN_TARGETS = (RNG.uniform(size=(N, 1)) < 1 / (1 + np.exp(-2 * BIN_LOGITS))).astype(np.float32)
BIN_PRED = (BIN_LOGITS > 0).ravel()

# multilabel: K independent logits, micro averages = one flattened binary problem
ML_LOGITS = RNG.normal(size=(N, K)).astype(np.float32)
ML_TARGETS = (RNG.uniform(size=(N, K)) < 0.4).astype(np.float32)

# multiclass: K logits, integer labels correlated with them
MC_LOGITS = RNG.normal(size=(N, K)).astype(np.float32)
MC_LABELS = np.where(RNG.uniform(size=N) < 0.5, MC_LOGITS.argmax(1), RNG.integers(0, K, N))
MC_PRED = MC_LOGITS.argmax(1)

# regression: 3 target columns
REG_TARGETS = RNG.normal(size=(N, 3)).astype(np.float32)
REG_OUTPUTS = (REG_TARGETS + 0.5 * RNG.normal(size=(N, 3))).astype(np.float32)

SKLEARN_CASES = [
    (
        "accuracy",
        "binary",
        BIN_LOGITS,
        BIN_TARGETS,
        sk.accuracy_score(BIN_TARGETS.ravel(), BIN_PRED),
    ),
    (
        "auc",
        "binary",
        BIN_LOGITS,
        BIN_TARGETS,
        sk.roc_auc_score(BIN_TARGETS.ravel(), BIN_LOGITS.ravel()),
    ),
    ("f1", "binary", BIN_LOGITS, BIN_TARGETS, sk.f1_score(BIN_TARGETS.ravel(), BIN_PRED)),
    (
        "precision",
        "binary",
        BIN_LOGITS,
        BIN_TARGETS,
        sk.precision_score(BIN_TARGETS.ravel(), BIN_PRED),
    ),
    ("recall", "binary", BIN_LOGITS, BIN_TARGETS, sk.recall_score(BIN_TARGETS.ravel(), BIN_PRED)),
    (
        "accuracy",
        "multilabel",
        ML_LOGITS,
        ML_TARGETS,
        sk.accuracy_score(ML_TARGETS.ravel(), ML_LOGITS.ravel() > 0),
    ),
    (
        "auc",
        "multilabel",
        ML_LOGITS,
        ML_TARGETS,
        sk.roc_auc_score(ML_TARGETS, ML_LOGITS, average="micro"),
    ),
    (
        "f1",
        "multilabel",
        ML_LOGITS,
        ML_TARGETS,
        sk.f1_score(ML_TARGETS, ML_LOGITS > 0, average="micro"),
    ),
    (
        "precision",
        "multilabel",
        ML_LOGITS,
        ML_TARGETS,
        sk.precision_score(ML_TARGETS, ML_LOGITS > 0, average="micro"),
    ),
    (
        "recall",
        "multilabel",
        ML_LOGITS,
        ML_TARGETS,
        sk.recall_score(ML_TARGETS, ML_LOGITS > 0, average="micro"),
    ),
    (
        "f1_micro",
        "multilabel",
        ML_LOGITS,
        ML_TARGETS,
        sk.f1_score(ML_TARGETS, ML_LOGITS > 0, average="micro"),
    ),
    (
        "f1_macro",
        "multilabel",
        ML_LOGITS,
        ML_TARGETS,
        sk.f1_score(ML_TARGETS, ML_LOGITS > 0, average="macro"),
    ),
    (
        "label_f1",
        "multilabel",
        ML_LOGITS,
        ML_TARGETS,
        sk.f1_score(ML_TARGETS, ML_LOGITS > 0, average=None),
    ),
    (
        "label_auc",
        "multilabel",
        ML_LOGITS,
        ML_TARGETS,
        sk.roc_auc_score(ML_TARGETS, ML_LOGITS, average=None),
    ),
    ("accuracy", "multiclass", MC_LOGITS, MC_LABELS, sk.accuracy_score(MC_LABELS, MC_PRED)),
    (
        "top5_accuracy",
        "multiclass",
        MC_LOGITS,
        MC_LABELS,
        sk.top_k_accuracy_score(MC_LABELS, MC_LOGITS, k=5),
    ),
    (
        "auc",
        "multiclass",
        MC_LOGITS,
        MC_LABELS,
        sk.roc_auc_score(MC_LABELS, softmax(MC_LOGITS, 1), multi_class="ovr"),
    ),
    ("f1", "multiclass", MC_LOGITS, MC_LABELS, sk.f1_score(MC_LABELS, MC_PRED, average="macro")),
    (
        "precision",
        "multiclass",
        MC_LOGITS,
        MC_LABELS,
        sk.precision_score(MC_LABELS, MC_PRED, average="macro"),
    ),
    (
        "recall",
        "multiclass",
        MC_LOGITS,
        MC_LABELS,
        sk.recall_score(MC_LABELS, MC_PRED, average="macro"),
    ),
    (
        "mae",
        "regression",
        REG_OUTPUTS,
        REG_TARGETS,
        sk.mean_absolute_error(REG_TARGETS, REG_OUTPUTS),
    ),
    (
        "rmse",
        "regression",
        REG_OUTPUTS,
        REG_TARGETS,
        np.sqrt(sk.mean_squared_error(REG_TARGETS, REG_OUTPUTS)),
    ),
    ("r2", "regression", REG_OUTPUTS, REG_TARGETS, sk.r2_score(REG_TARGETS, REG_OUTPUTS)),
]


@pytest.mark.parametrize(
    "name, task, outputs, targets, expected",
    SKLEARN_CASES,
    ids=[f"{c[1]}-{c[0]}" for c in SKLEARN_CASES],
)
def test_metric_matches_sklearn(name, task, outputs, targets, expected):
    np.testing.assert_allclose(_ours(name, task, outputs, targets), expected, rtol=1e-5)


def test_every_metric_and_task_pair_is_checked():
    checked = {(name, task) for name, task, *_ in SKLEARN_CASES}
    # detection's metrics have their own test below
    expected = {(n, t) for t, names in TASK_METRICS.items() if t != "detection" for n in names}
    assert checked == expected
    assert {n for names in TASK_METRICS.values() for n in names} == set(METRICS.names())


def test_multiclass_accepts_one_hot_targets():
    one_hot = np.eye(K, dtype=np.float32)[MC_LABELS]
    for name in ("accuracy", "f1", "auc"):
        assert _ours(name, "multiclass", MC_LOGITS, one_hot) == _ours(
            name, "multiclass", MC_LOGITS, MC_LABELS
        )


def test_binary_segmentation_masks_are_scored_per_pixel():
    logits = RNG.normal(size=(4, 5, 5, 1)).astype(np.float32)
    masks = (RNG.uniform(size=(4, 5, 5)) < 0.5).astype(np.float32)  # no channel axis
    expected = sk.f1_score(masks.ravel(), logits.ravel() > 0)
    np.testing.assert_allclose(_ours("f1", "binary", logits, masks), expected, rtol=1e-5)


def test_auc_rank_statistic_by_hand():
    # positives at scores 0.8 and 0.5, negatives at 0.5 and 0.1: pairs (pos > neg) count
    # 1, 1, 0.5 (tie), 1 out of 4 -> 0.875
    scores = np.asarray([[0.8], [0.5], [0.5], [0.1]], np.float32)
    labels = np.asarray([[1.0], [1.0], [0.0], [0.0]], np.float32)
    np.testing.assert_allclose(_ours("auc", "binary", scores, labels), 0.875)
    assert np.isnan(_ours("auc", "binary", scores, np.ones_like(labels)))  # undefined: no negatives


def test_zero_divisions_follow_sklearn():
    never_positive = -np.ones((4, 1), np.float32)
    labels = np.asarray([[1.0], [0.0], [1.0], [0.0]], np.float32)
    assert _ours("precision", "binary", never_positive, labels) == 0.0
    assert _ours("f1", "binary", never_positive, labels) == 0.0
    constant = np.ones((4, 1), np.float32)
    assert _ours("r2", "regression", constant, constant) == 1.0
    assert _ours("r2", "regression", constant + 1, constant) == 0.0


def test_detection_metrics_split_boxes_and_classes():
    # box 1: [0,0,2,2] vs [1,1,3,3] -> IoU 1/7 ; box 2 exact -> 1 ; classes: 1 right, 1 wrong
    outputs = np.asarray([[0, 0, 2, 2, 3.0, 0.0], [0, 0, 1, 1, 0.0, 2.0]], np.float32)
    targets = np.asarray([[1, 1, 3, 3, 0], [0, 0, 1, 1, 0]], np.float32)
    np.testing.assert_allclose(_ours("mean_iou", "detection", outputs, targets), (1 / 7 + 1) / 2)
    assert _ours("accuracy", "detection", outputs, targets) == 0.5
    assert _ours("top5_accuracy", "detection", outputs, targets) == 1.0


def test_per_label_metrics_become_one_series_per_label():
    from engine.training.train import make_metrics

    scores = make_metrics(["label_auc", "f1_macro"], "multilabel")(ML_LOGITS, ML_TARGETS)
    assert sorted(scores) == ["f1_macro"] + [f"label_auc_{i}" for i in range(K)]
    expected = sk.roc_auc_score(ML_TARGETS, ML_LOGITS, average=None)
    for i in range(K):
        np.testing.assert_allclose(float(scores[f"label_auc_{i}"]), expected[i], rtol=1e-5)


def test_macro_f1_sees_a_label_never_predicted():
    # label 1 is present but never predicted: micro F1 stays high, macro F1 halves it away
    targets = np.asarray([[1, 1], [1, 0], [1, 0], [1, 0]], np.float32)
    logits = np.asarray([[5, -5], [5, -5], [5, -5], [5, -5]], np.float32)
    assert _ours("f1_micro", "multilabel", logits, targets) == pytest.approx(8 / 9)
    assert _ours("f1_macro", "multilabel", logits, targets) == pytest.approx(0.5)
    assert np.isnan(_ours("label_auc", "multilabel", logits, targets)[0])  # label 0: no negatives


def test_names_that_do_not_fit_the_task():
    with pytest.raises(InputError) as err:
        metric_fn("accuracy", "regression")
    assert (
        str(err.value)
        == "metrics: 'accuracy' does not apply to task regression; expected one of mae, rmse, r2"
    )
    with pytest.raises(InputError, match="it has no metrics"):
        metric_fn("mae", "gan")
    with pytest.raises(UnknownNameError, match="did you mean 'rmse'"):
        metric_fn("rmes", "regression")
