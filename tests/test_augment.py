"""Augmentations by name: what each does to a batch, per example, inside jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advisor.contract.errors import InputError
from advisor.contract.schemas import Augmentation
from engine.datasets.augment import AUGMENTATIONS, IMAGE_ONLY, make_augment, rotate_image

pytestmark = pytest.mark.usefixtures("strict_jax")

SHAPE = (8, 6, 2)
KEY = jax.random.key(0)


def _images(n=16, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(size=(n, *SHAPE)).astype(np.float32))


def _labels(n=16):
    return jax.nn.one_hot(jnp.arange(n) % 4, 4, dtype=jnp.float32)


def _apply(name, strength, x, y=None, key=KEY):
    fn = jax.jit(AUGMENTATIONS.get(name)(strength, SHAPE))
    return fn(key, x, _labels(x.shape[0]) if y is None else y)


def _np_translate(image, dy, dx, zero_fill):
    h, w = image.shape[:2]
    rows, cols = np.arange(h) - dy, np.arange(w) - dx
    out = image[np.clip(rows, 0, h - 1)][:, np.clip(cols, 0, w - 1)]
    if zero_fill:
        out[(rows < 0) | (rows >= h)] = 0
        out[:, (cols < 0) | (cols >= w)] = 0
    return out


def _offsets_found(x, out, limit, zero_fill):
    """For each example, the (dy, dx) within ±limit that turns x into out (or None)."""
    found = []
    for image, moved in zip(np.asarray(x), np.asarray(out), strict=True):
        match = [
            (dy, dx)
            for dy in range(-limit[0], limit[0] + 1)
            for dx in range(-limit[1], limit[1] + 1)
            if np.array_equal(_np_translate(image, dy, dx, zero_fill), moved)
        ]
        found.append(match[0] if match else None)
    return found


def test_every_augmentation_is_tested_and_keeps_shape_dtype_targets():
    x, y = _images(), _labels()
    for name in AUGMENTATIONS.names():
        out_x, out_y = _apply(name, 0.25, x, y)
        assert out_x.shape == x.shape and out_x.dtype == x.dtype, name
        if name != "mixup":
            assert np.array_equal(out_y, y), name
        assert not np.array_equal(out_x, x), f"{name} left the batch unchanged"


def test_flip_mirrors_a_random_subset():
    x = _images(64)
    out, _ = _apply("flip", 0.5, x)
    pairs = list(zip(np.asarray(out), np.asarray(x), strict=True))
    flipped = [np.array_equal(o, xi[:, ::-1]) for o, xi in pairs]
    kept = [np.array_equal(o, xi) for o, xi in pairs]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 16 < sum(flipped) < 48
    always, _ = _apply("flip", 1.0, x)
    np.testing.assert_array_equal(always, x[:, :, ::-1])


@pytest.mark.parametrize("name, zero_fill", [("shift", False), ("crop", True)])
def test_translations_stay_within_their_limit(name, zero_fill):
    x = _images()
    out, _ = _apply(name, 0.25, x)
    limit = (2, round(0.25 * SHAPE[1]))  # round(0.25 * 8), round(0.25 * 6)
    offsets = _offsets_found(x, out, limit, zero_fill)
    assert None not in offsets
    assert len(set(offsets)) > 3  # independent offsets per example


def test_rotate_matches_scipy_and_varies_per_example():
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    image = np.asarray(_images(1)[0])
    for degrees in (12.0, -25.0):
        expected = scipy_ndimage.rotate(image, degrees, reshape=False, order=1, mode="nearest")
        np.testing.assert_allclose(rotate_image(jnp.asarray(image), degrees), expected, atol=1e-5)
    same = jnp.broadcast_to(jnp.asarray(image), (8, *SHAPE))
    out, _ = _apply("rotate", 20.0, same)
    assert len({np.asarray(o).tobytes() for o in out}) == 8
    flat, _ = _apply("rotate", 20.0, jnp.full((4, *SHAPE), 0.7, jnp.float32))
    np.testing.assert_allclose(flat, 0.7, rtol=1e-6)  # edge replication: no black corners


def test_brightness_adds_one_value_per_image():
    x = _images()
    out, _ = _apply("brightness", 0.2, x)
    delta = np.asarray(out - x).reshape(x.shape[0], -1)
    np.testing.assert_allclose(delta, delta[:, :1] * np.ones_like(delta), atol=1e-6)
    assert np.all(np.abs(delta) <= 0.2 + 1e-6) and len(np.unique(delta[:, 0].round(6))) > 8


def test_contrast_keeps_the_channel_means():
    x = _images()
    out, _ = _apply("contrast", 0.5, x)
    np.testing.assert_allclose(out.mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=1e-6)
    spread = np.asarray(out.std(axis=(1, 2)) / x.std(axis=(1, 2)))
    assert np.all((spread >= 0.5 - 1e-5) & (spread <= 1.5 + 1e-5))
    assert spread.std() > 0.05


def test_noise_on_tables_has_the_asked_std():
    x = jnp.zeros((256, 32), jnp.float32)
    augment = jax.jit(make_augment([Augmentation(name="noise", strength=0.3)], "tabular", (32,)))
    out, _ = augment(KEY, x, jnp.zeros((256, 1), jnp.float32))
    assert abs(float(jnp.std(out)) - 0.3) < 0.01


def test_mixup_mixes_inputs_and_targets_alike():
    y = _labels(32)
    # inputs equal to targets: any mismatch between the two mixings would show
    x, out_y = _apply("mixup", 0.4, y, y)
    np.testing.assert_allclose(x, out_y, atol=1e-6)
    np.testing.assert_allclose(out_y.sum(axis=1), 1.0, rtol=1e-5)
    assert np.any((np.asarray(out_y) > 0.05) & (np.asarray(out_y) < 0.95))


def test_mixup_refuses_integer_labels():
    augment = make_augment([Augmentation(name="mixup", strength=0.2)], "tabular", (3,))
    with pytest.raises(InputError, match=r"^regularization.augmentation\[0\].name: mixup mixes"):
        augment(KEY, jnp.zeros((4, 3), jnp.float32), jnp.zeros(4, jnp.int32))


def test_composition_is_deterministic_per_key():
    plan = [Augmentation(name="flip", strength=0.5), Augmentation(name="noise", strength=0.1)]
    augment = jax.jit(make_augment(plan, "image", SHAPE))
    x, y = _images(), _labels()
    first, _ = augment(KEY, x, y)
    again, _ = augment(KEY, x, y)
    other, _ = augment(jax.random.key(1), x, y)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    identity = make_augment([], "image", SHAPE)
    assert identity(KEY, x, y)[0] is x


@pytest.mark.parametrize("name", IMAGE_ONLY)
def test_image_only_names_on_tables_name_the_field(name):
    plan = [Augmentation(name="noise", strength=0.1), Augmentation(name=name, strength=0.1)]
    with pytest.raises(InputError) as err:
        make_augment(plan, "tabular", (10,))
    assert str(err.value) == (
        f"regularization.augmentation[1].name: {name!r} works on images, not tabular inputs; "
        "expected one of mixup, noise"
    )


def test_bad_strength_names_the_field():
    with pytest.raises(InputError) as err:
        make_augment([Augmentation(name="flip", strength=1.5)], "image", SHAPE)
    assert str(err.value) == (
        "regularization.augmentation[0].strength: flip takes a probability in (0, 1]; got 1.5"
    )
    with pytest.raises(InputError, match=r"needs images of shape \[height, width, channels\]"):
        make_augment([Augmentation(name="rotate", strength=5)], "image", (28, 28))
