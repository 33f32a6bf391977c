"""Data augmentation inside the compiled step: the ``AUGMENTATIONS`` registry and ``make_augment``.

Each registered factory is ``make(strength: float, input_shape: tuple) ->
fn(key, x, y) -> (x, y)``: a pure ``jax.numpy`` function of a whole batch, safe
under ``jit``, drawing independent randomness for every example from ``key``.
Images are ``[B, H, W, C]``; tables ``[B, D]``.  What ``strength`` means:

* flip: probability of a horizontal flip;
* shift: largest translation, as a fraction of height/width; edges replicated;
* crop: pad by that fraction with zeros and crop back to size at a random place
  (the CIFAR pad-and-crop), i.e. a zero-filled translation;
* rotate: largest rotation in degrees, bilinear, edges replicated;
* brightness: largest value added to the whole image;
* contrast: largest relative change of each image's spread around its mean;
* noise: standard deviation of added Gaussian noise (images and tables);
* mixup: alpha of the Beta(alpha, alpha) mixing weight (Zhang et al. 2018);
  each example is mixed with another of the batch, inputs and targets alike, so
  targets must be float (one-hot, soft, or binary).

A strength may also be a jax array (one trial's value when trials train
together under ``jax.vmap``, ``engine.searching.population``); its range is then checked
beforehand, value by value.

``make_augment(augmentations, modality, input_shape)`` composes a plan's list in
order, folding the position into the key, and reports bad entries as
``InputError`` naming ``regularization.augmentation[i]``.  Augmentation runs
on training batches only; the engine folds the step into the key it passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates

from advisor.contract.errors import InputError
from advisor.contract.schemas import Augmentation
from engine.runtime.registry import Registry

AugmentFn = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]

AUGMENTATIONS: Registry = Registry("augmentation")

IMAGE_ONLY = ("flip", "shift", "crop", "rotate", "brightness", "contrast")


def _check_strength(name: str, strength: float, high: float, meaning: str) -> None:
    if isinstance(strength, jax.Array):
        return  # a per-trial array (engine.searching.population), whose values were checked as numbers first
    if not 0.0 < strength <= high:
        raise InputError(f"strength: {name} takes {meaning} in (0, {high:g}]; got {strength:g}")


def _per_example(values: jax.Array, like: jax.Array) -> jax.Array:
    """``[B]`` values shaped to broadcast against ``like`` (no implicit rank promotion)."""
    return values.reshape((like.shape[0],) + (1,) * (like.ndim - 1)).astype(like.dtype)


def _uniform(key: jax.Array, x: jax.Array, low: float, high: float) -> jax.Array:
    return jax.random.uniform(key, (x.shape[0],), jnp.float32, low, high)


# ----------------------------------------------------------------------------- geometry


def translate_image(image: jax.Array, dy: jax.Array, dx: jax.Array, zero_fill: bool) -> jax.Array:
    """One ``[H, W, C]`` image moved down ``dy`` and right ``dx`` pixels.

    Pixels that come from outside are zeros (``zero_fill``) or the nearest edge pixel.
    """
    height, width = image.shape[:2]
    rows, cols = jnp.arange(height) - dy, jnp.arange(width) - dx
    moved = image[jnp.clip(rows, 0, height - 1)][:, jnp.clip(cols, 0, width - 1)]
    if not zero_fill:
        return moved
    inside = ((rows >= 0) & (rows < height))[:, None] & ((cols >= 0) & (cols < width))[None, :]
    return jnp.where(inside[:, :, None], moved, jnp.zeros((), image.dtype))


def rotate_image(image: jax.Array, degrees: jax.Array) -> jax.Array:
    """One ``[H, W, C]`` image rotated counter-clockwise about its centre, bilinear, edges kept.

    Same convention as ``scipy.ndimage.rotate(image, degrees, reshape=False, order=1,
    mode="nearest")``.
    """
    height, width = image.shape[:2]
    theta = jnp.deg2rad(jnp.asarray(degrees, jnp.float32))
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    rows, cols = jnp.meshgrid(
        jnp.arange(height, dtype=jnp.float32), jnp.arange(width, dtype=jnp.float32), indexing="ij"
    )
    y, x = rows - (height - 1) / 2, cols - (width - 1) / 2
    # Each output pixel samples the input at the inverse rotation of its position.
    src_rows = cos * y + sin * x + (height - 1) / 2
    src_cols = -sin * y + cos * x + (width - 1) / 2

    def sample(channel):
        return map_coordinates(channel, [src_rows, src_cols], order=1, mode="nearest")

    channels = jnp.moveaxis(image.astype(jnp.float32), -1, 0)
    return jnp.moveaxis(jax.vmap(sample)(channels), 0, -1).astype(image.dtype)


def _make_translate(strength: float, input_shape: tuple, zero_fill: bool) -> AugmentFn:
    if isinstance(strength, jax.Array):  # per-trial strengths: the same rounding, half to even
        limits = jnp.round(strength * jnp.asarray([[input_shape[0], input_shape[1]]], jnp.float32))
        limits = limits.astype(jnp.int32)
    else:
        limits = jnp.asarray([[round(strength * input_shape[0]), round(strength * input_shape[1])]])

    def augment(key, x, y):
        offsets = jax.random.randint(key, (x.shape[0], 2), -limits, limits + 1)
        moved = jax.vmap(lambda img, off: translate_image(img, off[0], off[1], zero_fill))(
            x, offsets
        )
        return moved, y

    return augment


@AUGMENTATIONS.register("shift")
def make_shift(strength: float, input_shape: tuple) -> AugmentFn:
    """Translate each image by up to ``strength`` x its size, replicating edge pixels."""
    _check_strength("shift", strength, 0.5, "a fraction of the image size")
    return _make_translate(strength, input_shape, zero_fill=False)


@AUGMENTATIONS.register("crop")
def make_crop(strength: float, input_shape: tuple) -> AugmentFn:
    """Zero-pad by ``strength`` x the size and crop back at a random place."""
    _check_strength("crop", strength, 0.5, "a fraction of the image size")
    return _make_translate(strength, input_shape, zero_fill=True)


@AUGMENTATIONS.register("flip")
def make_flip(strength: float, input_shape: tuple) -> AugmentFn:
    """Mirror each image left-right with probability ``strength``."""
    del input_shape
    _check_strength("flip", strength, 1.0, "a probability")

    def augment(key, x, y):
        flip = jax.random.bernoulli(key, strength, (x.shape[0],))
        return jnp.where(flip.reshape(-1, 1, 1, 1), x[:, :, ::-1, :], x), y

    return augment


@AUGMENTATIONS.register("rotate")
def make_rotate(strength: float, input_shape: tuple) -> AugmentFn:
    """Rotate each image by an angle drawn from [-strength, strength] degrees."""
    del input_shape
    _check_strength("rotate", strength, 180.0, "degrees")

    def augment(key, x, y):
        angles = _uniform(key, x, -strength, strength)
        return jax.vmap(rotate_image)(x, angles), y

    return augment


# ----------------------------------------------------------------------------- photometric


@AUGMENTATIONS.register("brightness")
def make_brightness(strength: float, input_shape: tuple) -> AugmentFn:
    """Add one value from [-strength, strength] to each whole image."""
    del input_shape
    _check_strength("brightness", strength, float("inf"), "a value added to the image")

    def augment(key, x, y):
        return x + _per_example(_uniform(key, x, -strength, strength), x), y

    return augment


@AUGMENTATIONS.register("contrast")
def make_contrast(strength: float, input_shape: tuple) -> AugmentFn:
    """Scale each image's deviation from its per-channel mean by a factor in 1 ± strength."""
    del input_shape
    _check_strength("contrast", strength, 1.0, "a relative change")

    def augment(key, x, y):
        factor = _per_example(_uniform(key, x, 1.0 - strength, 1.0 + strength), x)
        mean = jnp.mean(x, axis=(1, 2), keepdims=True)
        return (x - mean) * factor + mean, y

    return augment


@AUGMENTATIONS.register("noise")
def make_noise(strength: float, input_shape: tuple) -> AugmentFn:
    """Add Gaussian noise of standard deviation ``strength`` to every value."""
    del input_shape
    _check_strength("noise", strength, float("inf"), "a standard deviation")

    def augment(key, x, y):
        return x + strength * jax.random.normal(key, x.shape, x.dtype), y

    return augment


@AUGMENTATIONS.register("mixup")
def make_mixup(strength: float, input_shape: tuple) -> AugmentFn:
    """Mix each example with a random partner: lam x + (1 - lam) x', same for y."""
    del input_shape
    _check_strength("mixup", strength, float("inf"), "a Beta alpha")

    def augment(key, x, y):
        if not jnp.issubdtype(y.dtype, jnp.floating):
            raise InputError(
                f"name: mixup mixes targets, so they must be float (one-hot, soft or binary); "
                f"got {y.dtype} labels; use one-hot targets with categorical_crossentropy"
            )
        weight_key, partner_key = jax.random.split(key)
        lam = jax.random.beta(weight_key, strength, strength, (x.shape[0],), jnp.float32)
        partner = jax.random.permutation(partner_key, x.shape[0])
        x_lam, y_lam = _per_example(lam, x), _per_example(lam, y)
        return x_lam * x + (1 - x_lam) * x[partner], y_lam * y + (1 - y_lam) * y[partner]

    return augment


# ----------------------------------------------------------------------------- plan -> fn


def make_augment(augmentations: Sequence[Augmentation], modality: str, input_shape) -> AugmentFn:
    """The plan's augmentations composed in order into one ``fn(key, x, y) -> (x, y)``."""
    input_shape = tuple(input_shape)
    steps: list[tuple[str, AugmentFn]] = []
    for i, augmentation in enumerate(augmentations):
        field = f"regularization.augmentation[{i}]"
        if augmentation.name in IMAGE_ONLY:
            if modality != "image":
                general = ", ".join(n for n in AUGMENTATIONS.names() if n not in IMAGE_ONLY)
                raise InputError(
                    f"{field}.name: {augmentation.name!r} works on images, not {modality} "
                    f"inputs; expected one of {general}"
                )
            if len(input_shape) != 3:
                raise InputError(
                    f"{field}.name: {augmentation.name!r} needs images of shape "
                    f"[height, width, channels]; input_shape is {list(input_shape)}"
                )
        make = AUGMENTATIONS.get(augmentation.name)
        try:
            steps.append((field, make(augmentation.strength, input_shape)))
        except InputError as err:
            raise InputError(f"{field}.{err}") from None

    def augment(key, x, y):
        for i, (field, fn) in enumerate(steps):
            try:
                x, y = fn(jax.random.fold_in(key, i), x, y)
            except InputError as err:  # raised while tracing, before anything runs
                raise InputError(f"{field}.{err}") from None
        return x, y

    return augment
