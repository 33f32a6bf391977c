"""Every loss by name: hand-worked values, reference implementations, finite gradients."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from advisor.contract.errors import InputError, UnknownNameError
from advisor.contract.schemas import LossPlan, LossTerm
from engine.optim.losses import GAN_LOSSES, LOSSES, GanLoss, build_loss, gradient_penalty, make_loss

pytestmark = pytest.mark.usefixtures("strict_jax")

LOG2 = math.log(2.0)
LOG3 = math.log(3.0)

# name, params, outputs, targets, expected per-example loss — each worked by hand.
HAND_CASES = [
    # (1² + 2²)/2 = 2.5 ; (0 + 2²)/2 = 2
    ("mse", {}, [[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]], [2.5, 2.0]),
    ("l2", {}, [[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]], [2.5, 2.0]),
    # (1 + 2)/2 = 1.5 ; (0 + 2)/2 = 1
    ("mae", {}, [[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]], [1.5, 1.0]),
    ("l1", {}, [[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]], [1.5, 1.0]),
    # delta 1: |e|=1 -> 0.5 ; |e|=2 -> 1*(2 - 0.5) = 1.5 ; means (0.5+1.5)/2, (0+1.5)/2
    ("huber", {"delta": 1.0}, [[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]], [1.0, 0.75]),
    # delta 3: both quadratic: (0.5 + 2)/2 = 1.25
    ("huber", {"delta": 3.0}, [[1.0, 2.0]], [[0.0, 0.0]], [1.25]),
    # logit 0 -> p = .5 -> -log .5 ; logit log 3 -> p = .75 -> -log .75
    ("binary_crossentropy", {}, [[0.0], [LOG3]], [[1.0], [1.0]], [LOG2, -math.log(0.75)]),
    # smoothing .2: target 1 -> .9 ; -(.9 log .75 + .1 log .25) = .397543
    ("binary_crossentropy", {"label_smoothing": 0.2}, [[LOG3]], [[1.0]], [0.397543]),
    # signs +1, +1, -1: max(0, 1 - .5) ; max(0, 1 + 2) ; max(0, 1 + 3)
    ("hinge", {}, [[0.5], [-2.0], [3.0]], [[1.0], [1.0], [0.0]], [0.5, 3.0, 4.0]),
    # p = .75. y=1: .25 * (1-.75)² * -log .75 = .0044950 ; y=0: .75 * .75² * -log .25 = .584843
    (
        "focal",
        {"gamma": 2.0, "alpha": 0.25},
        [[LOG3], [LOG3]],
        [[1.0], [0.0]],
        [0.0044950, 0.584843],
    ),
    # gamma 0, alpha .5 = half the cross-entropy
    ("focal", {"gamma": 0.0, "alpha": 0.5}, [[0.0]], [[1.0]], [LOG2 / 2]),
    # softmax(0, 0, log 2) = (.25, .25, .5): -log .5 ; smoothing .3 -> (.1, .1, .8): .831777
    ("categorical_crossentropy", {}, [[0.0, 0.0, LOG2]], [[0.0, 0.0, 1.0]], [LOG2]),
    (
        "categorical_crossentropy",
        {"label_smoothing": 0.3},
        [[0.0, 0.0, LOG2]],
        [[0.0, 0.0, 1.0]],
        [0.831777],
    ),
    ("sparse_categorical_crossentropy", {}, [[0.0, 0.0, LOG2]] * 2, [2, 0], [LOG2, math.log(4.0)]),
    (
        "sparse_categorical_crossentropy",
        {"label_smoothing": 0.3},
        [[0.0, 0.0, LOG2]],
        [2],
        [0.831777],
    ),
    # targets (.5, .5, 0) vs (.25, .25, .5): .5 log 2 + .5 log 2 + 0
    ("kl_divergence", {}, [[0.0, 0.0, LOG2]], [[0.5, 0.5, 0.0]], [LOG2]),
    # one channel: p = (.5, .75), mask (1, 0): I=.5, |P|=1.25, |T|=1 -> 1 - 2/3.25
    ("dice", {"smooth": 1.0}, [[[0.0], [LOG3]]], [[[1.0], [0.0]]], [1 - 2 / 3.25]),
    # two channels, p = (.5, .5), class 1: class 0 1 - 1/1.5 ; class 1 1 - 2/2.5 ; mean
    ("dice", {"smooth": 1.0}, [[[0.0, 0.0]]], [[1]], [((1 - 1 / 1.5) + (1 - 2 / 2.5)) / 2]),
    # [0,0,2,2] vs [1,1,3,3]: I=1, U=7 -> 1 - 1/7 ; disjoint unit boxes -> 1
    ("iou", {}, [[0, 0, 2, 2], [0, 0, 1, 1]], [[1, 1, 3, 3], [2, 2, 3, 3]], [1 - 1 / 7, 1.0]),
    # hull 9: GIoU = 1/7 - 2/9 ; disjoint: 0 - (9 - 2)/9
    (
        "giou",
        {},
        [[0, 0, 2, 2], [0, 0, 1, 1]],
        [[1, 1, 3, 3], [2, 2, 3, 3]],
        [1 - (1 / 7 - 2 / 9), 1 + 7 / 9],
    ),
    # errors (.5, 2, 0, 0); beta 1: (.125 + 1.5)/4 ; beta .5: (.25 + 1.75)/4
    ("smooth_l1", {"beta": 1.0}, [[0.5, 2.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 0.0]], [0.40625]),
    ("smooth_l1", {"beta": 0.5}, [[0.5, 2.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 0.0]], [0.5]),
]


@pytest.mark.parametrize(
    "name, params, outputs, targets, expected",
    HAND_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(HAND_CASES)],
)
def test_loss_matches_hand_computed_value(name, params, outputs, targets, expected):
    targets = jnp.asarray(targets)
    if name != "sparse_categorical_crossentropy" and targets.dtype != jnp.int32:
        targets = targets.astype(jnp.float32)
    loss = jax.jit(make_loss(name, params))(jnp.asarray(outputs, jnp.float32), targets)
    assert loss.dtype == jnp.float32
    assert loss.shape == (len(expected),)
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-6)


def test_every_supervised_loss_has_a_hand_case():
    supervised = set(LOSSES.names()) - set(GAN_LOSSES)
    assert supervised == {case[0] for case in HAND_CASES}


def test_adversarial_halves():
    gan = make_loss("adversarial", {})
    assert isinstance(gan, GanLoss) and gan.gradient_penalty == 0.0
    zero = jnp.zeros((2, 1), jnp.float32)
    # logits 0: D = -log σ(0) - log(1 - σ(0)) = 2 log 2 ; G = -log σ(0) = log 2
    np.testing.assert_allclose(gan.discriminator(zero, zero), [2 * LOG2] * 2, rtol=1e-6)
    np.testing.assert_allclose(gan.generator(zero), [LOG2] * 2, rtol=1e-6)


def test_wasserstein_halves_and_penalty_weight():
    gan = make_loss("wasserstein", {"gradient_penalty": 5.0})
    assert gan.gradient_penalty == 5.0
    real, fake = jnp.asarray([[2.0]]), jnp.asarray([[-1.0]])
    # critic: fake - real = -3 ; generator: -fake = 1
    np.testing.assert_allclose(gan.discriminator(real, fake), [-3.0])
    np.testing.assert_allclose(gan.generator(fake), [1.0])


@pytest.mark.parametrize("weight_norm, expected", [(2.0, 1.0), (1.0, 0.0), (0.0, 1.0)])
def test_gradient_penalty_of_a_linear_critic(weight_norm, expected):
    # A linear critic x -> w·x has gradient w everywhere: penalty (|w| - 1)².
    w = jnp.asarray([weight_norm * 0.6, weight_norm * 0.8], jnp.float32)
    real = jnp.ones((4, 2), jnp.float32)
    fake = jnp.zeros((4, 2), jnp.float32)
    penalty = gradient_penalty(lambda x: x @ w, real, fake, jax.random.key(0))
    np.testing.assert_allclose(penalty, expected, atol=1e-5)
    grad = jax.grad(lambda w: gradient_penalty(lambda x: x @ w, real, fake, jax.random.key(0)))(w)
    assert np.all(np.isfinite(grad))


# ----------------------------------------------------------------------------- build_loss


def test_unknown_parameter_names_the_field_and_suggests():
    with pytest.raises(InputError) as err:
        build_loss(LossPlan(name="focal", params={"gama": 2.0}))
    assert str(err.value) == (
        "loss.params: 'gama' is not a parameter of focal; "
        "expected gamma, alpha; did you mean 'gamma'?"
    )
    with pytest.raises(
        InputError,
        match=r"^loss.terms\[0\].params: 'delta' is not a parameter of mse; it takes none$",
    ):
        build_loss(LossPlan(name="mae", terms=[LossTerm(name="mse", params={"delta": 1.0})]))


def test_unknown_loss_name_suggests_a_close_one():
    with pytest.raises(UnknownNameError, match="did you mean 'focal'"):
        LOSSES.get("focall")


def test_terms_on_shared_outputs_are_weighted():
    loss_fn = build_loss(LossPlan(name="mse", terms=[LossTerm(name="mae", weight=0.5)]))
    outputs, targets = jnp.asarray([[1.0, 2.0]]), jnp.asarray([[0.0, 0.0]])
    np.testing.assert_allclose(loss_fn(outputs, targets), [2.5 + 0.5 * 1.5])


def test_detection_splits_boxes_and_class_logits():
    plan = LossPlan(
        name="giou", terms=[LossTerm(name="focal", weight=2.0, params={"gamma": 0.0, "alpha": 0.5})]
    )
    loss_fn = jax.jit(build_loss(plan))
    # box [0,0,2,2] vs [1,1,3,3] (GIoU loss 1 - (1/7 - 2/9)); 2 class logits of 0 vs class 1:
    # focal with gamma 0, alpha .5 is half the BCE, log 2 / 2 per class, mean over classes.
    outputs = jnp.asarray([[0, 0, 2, 2, 0.0, 0.0]], jnp.float32)
    targets = jnp.asarray([[1, 1, 3, 3, 1]], jnp.float32)
    expected = 1 - (1 / 7 - 2 / 9) + 2.0 * LOG2 / 2
    np.testing.assert_allclose(loss_fn(outputs, targets), [expected], rtol=1e-6)


def test_gan_plan_carries_its_reconstruction_term():
    gan = build_loss(LossPlan(name="adversarial", terms=[LossTerm(name="l1", weight=100.0)]))
    assert isinstance(gan, GanLoss)
    fake, target = jnp.full((1, 2, 2, 1), 0.5), jnp.zeros((1, 2, 2, 1))
    np.testing.assert_allclose(gan.reconstruction(fake, target), [50.0])
    assert build_loss(LossPlan(name="wasserstein")).reconstruction is None
    with pytest.raises(InputError, match=r"loss.terms\[0\].name: 'wasserstein' is a GAN objective"):
        build_loss(LossPlan(name="mse", terms=[LossTerm(name="wasserstein")]))


# ----------------------------------------------------------------------------- gradients at edges

EDGE_CASES = [
    ("mse", [[1.0, 2.0]], [[1.0, 2.0]]),
    ("mae", [[1.0, 2.0]], [[1.0, 2.0]]),
    ("huber", [[1.0, 2.0]], [[1.0, 2.0]]),
    ("binary_crossentropy", [[100.0], [-100.0]], [[1.0], [0.0]]),
    ("hinge", [[1.0], [-1.0]], [[1.0], [0.0]]),
    ("focal", [[100.0], [-100.0], [0.0]], [[1.0], [0.0], [1.0]]),
    ("categorical_crossentropy", [[100.0, -100.0]], [[1.0, 0.0]]),
    ("sparse_categorical_crossentropy", [[100.0, -100.0]], [0]),
    ("kl_divergence", [[100.0, -100.0]], [[1.0, 0.0]]),
    ("dice", [[[-100.0], [-100.0]]], [[[0.0], [0.0]]]),  # empty mask, empty prediction
    (
        "iou",
        [[0, 0, 1, 1], [0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]],
        [[0, 0, 1, 1], [0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]],
    ),
    (
        "giou",
        [[0, 0, 1, 1], [0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]],
        [[0, 0, 1, 1], [0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]],
    ),
    ("giou", [[0.2, 0.2, 0.1, 0.1]], [[0.5, 0.5, 0.9, 0.9]]),  # an inverted predicted box
    ("smooth_l1", [[0.1, 0.2, 0.3, 0.4]], [[0.1, 0.2, 0.3, 0.4]]),
]


@pytest.mark.parametrize("name, outputs, targets", EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
def test_gradients_stay_finite_at_edge_cases(name, outputs, targets):
    loss_fn = make_loss(name, {})
    targets = jnp.asarray(targets)
    if name != "sparse_categorical_crossentropy":
        targets = targets.astype(jnp.float32)
    outputs = jnp.asarray(outputs, jnp.float32)
    values = loss_fn(outputs, targets)
    grads = jax.grad(lambda o: jnp.sum(loss_fn(o, targets)))(outputs)
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(grads))


def test_perfect_boxes_have_zero_loss():
    boxes = jnp.asarray([[0.1, 0.2, 0.6, 0.9]], jnp.float32)
    for name in ("iou", "giou", "smooth_l1"):
        np.testing.assert_allclose(make_loss(name, {})(boxes, boxes), [0.0], atol=1e-6)


# ----------------------------------------------------------------------------- references


def _random(shape, seed, low=-3.0, high=3.0):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


def test_dice_matches_optax_dice_loss():
    if not hasattr(optax.losses, "dice_loss"):
        pytest.skip("this optax has no dice_loss")
    logits = jnp.asarray(_random((3, 4, 4, 3), 0))
    masks = jax.nn.one_hot(jnp.asarray(np.random.default_rng(1).integers(0, 3, (3, 4, 4))), 3)
    # optax's form (I + s') / (I + .5 FP + .5 FN + s') equals ours with s = 2 s'.
    expected = optax.losses.dice_loss(logits, masks, smooth=0.5)
    np.testing.assert_allclose(
        make_loss("dice", {"smooth": 1.0})(logits, masks), expected, rtol=1e-5
    )


def _boxes(n, seed):
    corners = np.random.default_rng(seed).uniform(0, 1, (n, 2, 2)).astype(np.float32)
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)


def _check(name, params, ours_args, theirs):
    ours = make_loss(name, params)(*map(jnp.asarray, ours_args))
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_losses_match_torch():
    torch = pytest.importorskip("torch")
    F, t = torch.nn.functional, torch.from_numpy
    out, tgt = _random((5, 3), 2), _random((5, 3), 3)
    probs = np.random.default_rng(4).dirichlet(np.ones(3), 5).astype(np.float32)
    labels = np.random.default_rng(5).integers(0, 3, 5)
    bits = (_random((5, 3), 6) > 0).astype(np.float32)

    _check("mse", {}, (out, tgt), F.mse_loss(t(out), t(tgt), reduction="none").mean(1))
    _check("mae", {}, (out, tgt), F.l1_loss(t(out), t(tgt), reduction="none").mean(1))
    _check(
        "huber",
        {"delta": 0.7},
        (out, tgt),
        F.huber_loss(t(out), t(tgt), reduction="none", delta=0.7).mean(1),
    )
    _check(
        "smooth_l1",
        {"beta": 0.3},
        (out, tgt),
        F.smooth_l1_loss(t(out), t(tgt), reduction="none", beta=0.3).mean(1),
    )
    _check(
        "binary_crossentropy",
        {},
        (out, bits),
        F.binary_cross_entropy_with_logits(t(out), t(bits), reduction="none").mean(1),
    )
    _check(
        "categorical_crossentropy",
        {"label_smoothing": 0.1},
        (out, probs),
        F.cross_entropy(t(out), t(probs), reduction="none", label_smoothing=0.1),
    )
    _check(
        "sparse_categorical_crossentropy",
        {"label_smoothing": 0.1},
        (out, labels),
        F.cross_entropy(t(out), t(labels), reduction="none", label_smoothing=0.1),
    )
    _check(
        "kl_divergence",
        {},
        (out, probs),
        F.kl_div(F.log_softmax(t(out), 1), t(probs), reduction="none").sum(1),
    )


def test_focal_and_box_losses_match_torchvision():
    torch = pytest.importorskip("torch")
    ops = pytest.importorskip("torchvision.ops")
    t = torch.from_numpy
    out, bits = _random((5, 3), 2), (_random((5, 3), 6) > 0).astype(np.float32)
    _check(
        "focal",
        {"gamma": 1.5, "alpha": 0.3},
        (out, bits),
        ops.sigmoid_focal_loss(t(out), t(bits), alpha=0.3, gamma=1.5).mean(1),
    )
    pred, true = _boxes(8, 7), _boxes(8, 8)
    _check("giou", {}, (pred, true), ops.generalized_box_iou_loss(t(pred), t(true)))
    _check("iou", {}, (pred, true), 1 - ops.box_iou(t(pred), t(true)).diagonal())


# ----------------------------------------------------------------------------- class weights


def test_balanced_class_weights_make_each_class_add_up_to_the_same_total():
    # 6 examples of class 0, 2 of class 1: balanced weights are 8/(2*6) and 8/(2*2)
    counts = [6, 2]
    fn = build_loss(
        LossPlan(name="binary_crossentropy", class_weights="balanced"), "binary", counts
    )
    plain = build_loss(LossPlan(name="binary_crossentropy"))
    outputs = jnp.zeros((8, 1))
    targets = jnp.array([0, 0, 0, 0, 0, 0, 1, 1], jnp.float32)[:, None]
    weighted, unweighted = np.asarray(fn(outputs, targets)), np.asarray(plain(outputs, targets))
    np.testing.assert_allclose(weighted[:6], unweighted[:6] * 8 / 12, rtol=1e-6)
    np.testing.assert_allclose(weighted[6:], unweighted[6:] * 8 / 4, rtol=1e-6)
    assert weighted[:6].sum() == pytest.approx(weighted[6:].sum())


@pytest.mark.parametrize(
    "name, targets",
    [
        ("sparse_categorical_crossentropy", jnp.array([0, 1, 2, 2])),
        ("categorical_crossentropy", jax.nn.one_hot(jnp.array([0, 1, 2, 2]), 3)),
        ("focal", jax.nn.one_hot(jnp.array([0, 1, 2, 2]), 3)),
    ],
)
def test_listed_class_weights_scale_each_example_by_its_class(name, targets):
    weights = [1.0, 2.0, 0.5]
    fn = build_loss(LossPlan(name=name, class_weights=weights), "multiclass", [1, 1, 2])
    plain = build_loss(LossPlan(name=name))
    outputs = jnp.array([[0.3, -0.2, 0.1], [1.0, 0.0, -1.0], [0.0, 0.5, 0.2], [2.0, 0.1, 0.0]])
    expected = np.asarray(plain(outputs, targets)) * np.array([1.0, 2.0, 0.5, 0.5])
    np.testing.assert_allclose(np.asarray(fn(outputs, targets)), expected, rtol=1e-6)


def test_class_weights_are_refused_where_there_are_no_classes_or_the_count_is_wrong():
    with pytest.raises(InputError, match="loss.class_weights: applies to binary and multiclass"):
        build_loss(LossPlan(name="mse", class_weights="balanced"), "regression", None)
    with pytest.raises(InputError, match="loss.class_weights: 2 weights for 3 classes"):
        build_loss(
            LossPlan(name="sparse_categorical_crossentropy", class_weights=[1.0, 2.0]),
            "multiclass",
            [5, 5, 5],
        )
