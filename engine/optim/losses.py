"""Loss functions by contract name: the ``LOSSES`` registry and ``build_loss``.

Every supervised loss is a factory ``make(**params) -> loss_fn`` registered under
its name in ``advisor.contract.vocabulary.LossName``; ``loss_fn(outputs, targets)`` returns
the *per-example* loss, shape ``[B]`` float32, so the training step can weight,
mask or average it.  Element-wise losses (mse, mae, huber, binary_crossentropy,
hinge, focal, smooth_l1) average over every non-batch axis, as Keras does.
Outputs are always raw network outputs: logits for classification, values for
regression, boxes ``(x1, y1, x2, y2)`` for detection.

The two GAN objectives have another shape: their factory returns a ``GanLoss``
holding a discriminator loss, a generator loss and the WGAN-GP weight, and
``gradient_penalty`` computes the penalty itself.

``build_loss(loss_plan)`` turns a plan's ``loss`` section into one callable:

* supervised losses: the named loss plus weighted ``terms`` on the same
  outputs/targets -> ``loss_fn(outputs, targets) -> [B]``;
* detection (a box loss named, iou/giou/smooth_l1): outputs ``[B, 4 + K]``
  (box, class logits) against targets ``[B, 5]`` (box, class id); the box loss
  reads the first four columns, each term the class logits against the class
  id (one-hot for every term but sparse_categorical_crossentropy);
* GANs (adversarial, wasserstein): a ``GanLoss`` whose ``reconstruction`` is the
  weighted sum of the terms (``fn(fake, paired_target) -> [B]``), or None.

A parameter the loss does not take is an ``InputError`` naming the field.
Optimizers, metrics and the training step live elsewhere.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from advisor.contract.errors import InputError
from advisor.contract.schemas import LossPlan
from engine.nn.detection_grid import make_grid_loss
from engine.runtime.registry import Registry

LossFn = Callable[[jax.Array, jax.Array], jax.Array]

LOSSES: Registry = Registry("loss")

BOX_LOSSES = ("iou", "giou", "smooth_l1")
GAN_LOSSES = ("adversarial", "wasserstein")
# Denominator guard for box ratios: keeps IoU of empty or zero-area boxes finite
# (torchvision uses the same 1e-7).
_BOX_EPS = 1e-7


class GanLoss(NamedTuple):
    """The two halves of a GAN objective, on the discriminator's (critic's) logits.

    ``discriminator(real_logits, fake_logits) -> [B]`` and ``generator(fake_logits)
    -> [B]``; ``gradient_penalty`` is the WGAN-GP weight (0 = none);
    ``reconstruction(fake, target) -> [B]`` is the paired-GAN pixel term that
    ``build_loss`` adds from the plan's terms (None without one).
    """

    discriminator: Callable[[jax.Array, jax.Array], jax.Array]
    generator: Callable[[jax.Array], jax.Array]
    gradient_penalty: float
    reconstruction: LossFn | None = None


def per_example(values: jax.Array) -> jax.Array:
    """Mean over every axis but the first: element-wise loss -> ``[B]`` float32."""
    values = values.astype(jnp.float32)
    if values.ndim <= 1:
        return values
    return jnp.mean(values.reshape(values.shape[0], -1), axis=1)


def _float(x: jax.Array) -> jax.Array:
    return jnp.asarray(x).astype(jnp.float32)


# ----------------------------------------------------------------------------- regression


@LOSSES.register("l2")
@LOSSES.register("mse")
def make_mse() -> LossFn:
    """Squared error, mean over features (``l2`` is the same, as a reconstruction term)."""
    return lambda outputs, targets: per_example(
        optax.losses.squared_error(_float(outputs), _float(targets))
    )


@LOSSES.register("l1")
@LOSSES.register("mae")
def make_mae() -> LossFn:
    """Absolute error, mean over features (``l1`` is the same, as a reconstruction term)."""
    return lambda outputs, targets: per_example(jnp.abs(_float(outputs) - _float(targets)))


@LOSSES.register("huber")
def make_huber(delta: float = 1.0) -> LossFn:
    """Quadratic within ``delta`` of the target, linear beyond: robust to outliers.

    ``delta`` must be positive: at 0 optax's Huber loss is identically zero."""
    if not delta > 0:
        raise InputError(f"loss.params.delta: {delta} is out of range; expected a value > 0")
    return lambda outputs, targets: per_example(
        optax.losses.huber_loss(_float(outputs), _float(targets), delta=delta)
    )


# ----------------------------------------------------------------------------- classification


@LOSSES.register("binary_crossentropy")
def make_binary_crossentropy(label_smoothing: float = 0.0) -> LossFn:
    """Sigmoid cross-entropy on logits vs {0,1} targets; smoothing pulls targets to 0.5."""

    def loss_fn(outputs, targets):
        labels = _float(targets).reshape(outputs.shape)
        labels = labels * (1.0 - label_smoothing) + 0.5 * label_smoothing
        return per_example(optax.losses.sigmoid_binary_cross_entropy(_float(outputs), labels))

    return loss_fn


@LOSSES.register("hinge")
def make_hinge() -> LossFn:
    """Max-margin loss on raw scores; {0,1} targets are mapped to -1/+1."""

    def loss_fn(outputs, targets):
        signs = 2.0 * _float(targets).reshape(outputs.shape) - 1.0
        return per_example(optax.losses.hinge_loss(_float(outputs), signs))

    return loss_fn


@LOSSES.register("focal")
def make_focal(gamma: float = 2.0, alpha: float = 0.25) -> LossFn:
    """Sigmoid focal loss (Lin et al. 2017): down-weights easy examples.

    Targets are {0,1} (binary/multilabel) or one-hot (multiclass, detection);
    ``alpha`` weighs positives against negatives, 0.25 as in RetinaNet.
    """

    def loss_fn(outputs, targets):
        labels = _float(targets).reshape(outputs.shape)
        return per_example(
            optax.losses.sigmoid_focal_loss(_float(outputs), labels, alpha=alpha, gamma=gamma)
        )

    return loss_fn


def _smoothed(labels: jax.Array, label_smoothing: float) -> jax.Array:
    if label_smoothing == 0.0:
        return labels
    return optax.losses.smooth_labels(labels, label_smoothing)


@LOSSES.register("categorical_crossentropy")
def make_categorical_crossentropy(label_smoothing: float = 0.0) -> LossFn:
    """Softmax cross-entropy on logits ``[B, K]`` vs one-hot or soft targets ``[B, K]``."""

    def loss_fn(outputs, targets):
        labels = _smoothed(_float(targets), label_smoothing)
        return per_example(optax.losses.softmax_cross_entropy(_float(outputs), labels))

    return loss_fn


@LOSSES.register("sparse_categorical_crossentropy")
def make_sparse_categorical_crossentropy(label_smoothing: float = 0.0) -> LossFn:
    """Softmax cross-entropy on logits ``[B, K]`` vs integer labels ``[B]`` (or ``[B, 1]``)."""

    def loss_fn(outputs, targets):
        logits = _float(outputs)
        labels = jnp.asarray(targets).reshape(logits.shape[:-1]).astype(jnp.int32)
        if label_smoothing == 0.0:
            losses = optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)
        else:
            one_hot = jax.nn.one_hot(labels, logits.shape[-1], dtype=jnp.float32)
            losses = optax.losses.softmax_cross_entropy(logits, _smoothed(one_hot, label_smoothing))
        return per_example(losses)

    return loss_fn


@LOSSES.register("kl_divergence")
def make_kl_divergence() -> LossFn:
    """KL(targets || softmax(outputs)): targets a distribution over the last axis."""

    def loss_fn(outputs, targets):
        log_predictions = jax.nn.log_softmax(_float(outputs), axis=-1)
        return per_example(optax.losses.kl_divergence(log_predictions, _float(targets)))

    return loss_fn


@LOSSES.register("dice")
def make_dice(smooth: float = 1.0) -> LossFn:
    """Soft Dice loss, 1 - (2|P∩T| + s) / (|P| + |T| + s), on mask logits.

    One output channel: sigmoid, targets a {0,1} mask.  Several: softmax over
    the last axis, targets one-hot or integer class ids; Dice per class, then
    the mean over classes.  Sums run over every axis but batch and channel.
    """

    def loss_fn(outputs, targets):
        logits = _float(outputs)
        n_channels = logits.shape[-1]
        if n_channels == 1:
            probs = jax.nn.sigmoid(logits)
            masks = _float(targets).reshape(logits.shape)
        else:
            probs = jax.nn.softmax(logits, axis=-1)
            if jnp.issubdtype(jnp.asarray(targets).dtype, jnp.integer):
                masks = jax.nn.one_hot(targets, n_channels, dtype=jnp.float32)
            else:
                masks = _float(targets)
            masks = masks.reshape(logits.shape)
        axes = tuple(range(1, logits.ndim - 1))
        intersection = jnp.sum(probs * masks, axis=axes)
        total = jnp.sum(probs, axis=axes) + jnp.sum(masks, axis=axes)
        dice = (2.0 * intersection + smooth) / (total + smooth)
        return jnp.mean(1.0 - dice, axis=-1)

    return loss_fn


# ----------------------------------------------------------------------------- boxes


def box_iou_terms(pred: jax.Array, true: jax.Array) -> tuple[jax.Array, jax.Array]:
    """IoU and GIoU of matching boxes ``[..., 4]`` (x1, y1, x2, y2) -> two ``[...]`` arrays.

    An inverted box (x2 < x1) counts as empty; ``_BOX_EPS`` keeps empty boxes and
    a zero-area union finite (IoU 0, GIoU from the enclosing box).
    """
    pred, true = _float(pred), _float(true)

    def area(box):
        return jnp.maximum(box[..., 2] - box[..., 0], 0.0) * jnp.maximum(
            box[..., 3] - box[..., 1], 0.0
        )

    lower = jnp.maximum(pred[..., :2], true[..., :2])
    upper = jnp.minimum(pred[..., 2:], true[..., 2:])
    overlap = jnp.maximum(upper - lower, 0.0)
    intersection = overlap[..., 0] * overlap[..., 1]
    union = area(pred) + area(true) - intersection
    iou = intersection / (union + _BOX_EPS)
    hull = jnp.maximum(pred[..., 2:], true[..., 2:]) - jnp.minimum(pred[..., :2], true[..., :2])
    hull_area = hull[..., 0] * hull[..., 1]
    giou = iou - (hull_area - union) / (hull_area + _BOX_EPS)
    return iou, giou


@LOSSES.register("iou")
def make_iou() -> LossFn:
    """1 - IoU of predicted and true boxes ``[B, 4]``."""
    return lambda outputs, targets: 1.0 - box_iou_terms(outputs, targets)[0]


@LOSSES.register("giou")
def make_giou() -> LossFn:
    """1 - generalized IoU (Rezatofighi et al. 2019): still a gradient for disjoint boxes."""
    return lambda outputs, targets: 1.0 - box_iou_terms(outputs, targets)[1]


@LOSSES.register("smooth_l1")
def make_smooth_l1(beta: float = 1.0) -> LossFn:
    """Smooth L1 on box coordinates: 0.5 x²/beta below ``beta``, |x| - beta/2 above.

    ``beta = 0`` is the limit, plain L1 (as in PyTorch's ``SmoothL1Loss``), not 0/0."""
    if beta < 0:
        raise InputError(f"loss.params.beta: {beta} is out of range; expected a value >= 0")
    if beta == 0:
        return lambda outputs, targets: per_example(jnp.abs(_float(outputs) - _float(targets)))

    def loss_fn(outputs, targets):
        error = optax.losses.huber_loss(_float(outputs), _float(targets), delta=beta) / beta
        return per_example(error)

    return loss_fn


# ----------------------------------------------------------------------------- GANs


@LOSSES.register("adversarial")
def make_adversarial() -> GanLoss:
    """Non-saturating GAN loss (Goodfellow et al. 2014): BCE on discriminator logits."""

    def discriminator(real_logits, fake_logits):
        return per_example(jax.nn.softplus(-_float(real_logits))) + per_example(
            jax.nn.softplus(_float(fake_logits))
        )

    def generator(fake_logits):
        return per_example(jax.nn.softplus(-_float(fake_logits)))

    return GanLoss(discriminator, generator, gradient_penalty=0.0)


@LOSSES.register("wasserstein")
def make_wasserstein(gradient_penalty: float = 10.0) -> GanLoss:
    """Wasserstein critic loss; ``gradient_penalty`` is the WGAN-GP weight (10 in the paper)."""

    def discriminator(real_scores, fake_scores):
        return per_example(_float(fake_scores)) - per_example(_float(real_scores))

    def generator(fake_scores):
        return -per_example(_float(fake_scores))

    return GanLoss(discriminator, generator, gradient_penalty=gradient_penalty)


def gradient_penalty(
    critic_fn: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array, key: jax.Array
) -> jax.Array:
    """WGAN-GP (Gulrajani et al. 2017): mean of (||∇ critic(x̂)|| - 1)² on random interpolates.

    ``critic_fn`` maps a batch to one score per example; examples must not interact
    in it (no batch norm), so the gradient of the summed scores is per example.
    """
    real, fake = _float(real), _float(fake)
    mix = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), dtype=jnp.float32)
    interpolates = mix * real + (1.0 - mix) * fake
    grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(interpolates)
    # The small constant keeps the norm's gradient finite where a gradient is exactly zero.
    norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1) + 1e-12)
    return jnp.mean((norms - 1.0) ** 2)


# ----------------------------------------------------------------------------- plan -> loss


def loss_parameters(name: str) -> tuple[str, ...]:
    """The parameters the named loss takes, in signature order."""
    return tuple(inspect.signature(LOSSES.get(name)).parameters)


def make_loss(name: str, params: dict[str, float], field: str = "loss") -> LossFn | GanLoss:
    """The named loss with its parameters checked: an unknown one is an ``InputError``."""
    accepted = loss_parameters(name)
    for key in params:
        if key not in accepted:
            expected = "expected " + ", ".join(accepted) if accepted else "it takes none"
            close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(
                f"{field}.params: {key!r} is not a parameter of {name}; {expected}{hint}"
            )
    return LOSSES.get(name)(**params)


def build_loss(
    loss_plan: LossPlan, task: str | None = None, class_counts: Sequence[int] | None = None
) -> LossFn | GanLoss:
    """A plan's loss section -> one loss callable (see the module docstring for the shapes).

    ``loss.class_weights`` scales each example's loss by the weight of its class;
    ``task`` (binary or multiclass) and, for "balanced", the training split's
    ``class_counts`` are then needed.
    """
    fn = _build_unweighted(loss_plan)
    if loss_plan.class_weights is None:
        return fn
    return class_weighted(fn, class_weight_vector(loss_plan.class_weights, task, class_counts))


def class_weight_vector(
    spec: str | Sequence[float], task: str | None, class_counts: Sequence[int] | None
) -> jax.Array:
    """One weight per class: "balanced" gives n / (k * count), so every class adds up to n / k.

    Raises:
        InputError: naming ``loss.class_weights`` for a task without classes, a
            list of the wrong length, or "balanced" without the class counts.
    """
    if task not in ("binary", "multiclass"):
        raise InputError(
            f"loss.class_weights: applies to binary and multiclass tasks, not {task}; remove it"
        )
    if spec == "balanced":
        if class_counts is None:
            raise InputError(
                "loss.class_weights: 'balanced' needs the training split's class counts"
            )
        counts = jnp.maximum(jnp.asarray(class_counts, jnp.float32), 1.0)
        return counts.sum() / (len(class_counts) * counts)
    if class_counts is not None and len(spec) != len(class_counts):
        raise InputError(
            f"loss.class_weights: {len(spec)} weights for {len(class_counts)} classes; "
            "give one weight per class, in class-id order"
        )
    return jnp.asarray(spec, jnp.float32)


def class_weighted(loss_fn: LossFn, weights: jax.Array) -> LossFn:
    """Each example's loss times its class's weight.

    Targets as the loss reads them: 0/1 columns (binary, one weight each for 0
    and 1), class ids (sparse), or one-hot / soft rows (the row's mix of weights).
    """

    def weighted(outputs, targets):
        loss = loss_fn(outputs, targets)
        if jnp.issubdtype(targets.dtype, jnp.integer):
            per = weights[targets.reshape(-1)]
        elif targets.ndim == 2 and targets.shape[1] > 1 and targets.shape[1] == weights.shape[0]:
            per = _float(targets) @ weights
        else:  # binary 0/1 targets, [B] or [B, 1]
            t = _float(targets).reshape(-1)
            per = weights[0] * (1.0 - t) + weights[1] * t
        return loss * per

    return weighted


def _build_unweighted(loss_plan: LossPlan) -> LossFn | GanLoss:
    main = make_loss(loss_plan.name, loss_plan.params)
    terms = []
    for i, term in enumerate(loss_plan.terms):
        field = f"loss.terms[{i}]"
        if term.name in GAN_LOSSES:
            raise InputError(
                f"{field}.name: {term.name!r} is a GAN objective; it can only be loss.name"
            )
        terms.append((term.name, term.weight, make_loss(term.name, term.params, field)))

    if isinstance(main, GanLoss):
        if not terms:
            return main
        return main._replace(reconstruction=_weighted_sum([(w, fn) for _, w, fn in terms]))
    if loss_plan.name in BOX_LOSSES:
        return _detection_loss(main, terms)
    return _weighted_sum([(1.0, main)] + [(w, fn) for _, w, fn in terms])


def _weighted_sum(weighted: list[tuple[float, LossFn]]) -> LossFn:
    if len(weighted) == 1 and weighted[0][0] == 1.0:
        return weighted[0][1]

    def loss_fn(outputs, targets):
        return sum(weight * fn(outputs, targets) for weight, fn in weighted)

    return loss_fn


def _detection_loss(box_fn: LossFn, terms: list[tuple[str, float, LossFn]]) -> LossFn:
    """Box loss on columns 0-3; class terms on the logits after them vs the class id.

    Grid outputs ``[B, S*S, 5+K]`` against ``[B, M, 6]`` targets (several objects an image)
    take ``engine.nn.detection_grid``'s loss: objectness everywhere, box and class terms at
    the cells that hold an object.
    """

    def loss_fn(outputs, targets):
        if outputs.ndim == 3:
            grid = math.isqrt(outputs.shape[1])
            return make_grid_loss(box_fn, terms, grid)(outputs, targets)
        total = box_fn(outputs[:, :4], targets[:, :4])
        if terms:
            logits = outputs[:, 4:]
            class_ids = targets[:, 4].astype(jnp.int32)
            one_hot = jax.nn.one_hot(class_ids, logits.shape[-1], dtype=jnp.float32)
            for name, weight, fn in terms:
                labels = class_ids if name == "sparse_categorical_crossentropy" else one_hot
                total = total + weight * fn(logits, labels)
        return total

    return loss_fn
