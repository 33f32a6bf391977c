"""Convolution and pooling layers with CPU-fast kernels, and dropout (the models' building blocks).

On CPU (``impl="cpu"``) a convolution is a ``jax.custom_vjp`` of the forms that
``benchmarks/engine_bench.py --kernels`` measured fastest (figures in
benchmarks/RESULTS.md, "Engine throughput"): Eigen's forward convolution (one
row taller and cropped under the YNNPACK library, see ``engine.runtime.compiler``), the
input gradient as a padded convolution with the flipped kernel, the weight
gradient as a forward convolution of the transposed input (an im2col matrix
product under the library), and a thin first layer (``kh * kw * c_in <= 27``)
as shifted multiply-adds.  Max pooling is elementwise maxima of strided views
with a hand-written backward.  ``impl="xla"`` (GPU, TPU) is the plain ``lax``
convolution; dense layers are Flax's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from engine.runtime.compiler import eigen_convolutions

# The activations a plan can name (model.activation).
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "leaky_relu": nn.leaky_relu,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
}

_DIMS = ("NHWC", "HWIO", "NHWC")
# Patch elements per scan chunk of the im2col weight gradient: about 2.6 MB of
# float32, the size that measured fastest on the dev CPU (benchmarks/RESULTS.md).
_CHUNK_ELEMENTS = 700_000
# Below 8 input or output channels the library's unpadded convolution is as fast as
# the padded one (benchmarks/RESULTS.md).
_MIN_CHANNELS_FOR_PADDED = 8
# Kernel taps times input channels up to which a forward pass is shifted multiply-adds.
_THIN_TAPS = 27

Padding = tuple[tuple[int, int], tuple[int, int]]


def same_padding(kernel: tuple[int, int]) -> Padding:
    """SAME padding of a stride-1 convolution (extra row/column at the end for even kernels)."""
    return tuple(((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel)  # type: ignore[return-value]


def _is_thin(kh: int, kw: int, c_in: int) -> bool:
    """Whether a convolution's input is thin: ``kh * kw * c_in`` taps at most :data:`_THIN_TAPS`."""
    return kh * kw * c_in <= _THIN_TAPS


def _conv_shifted(x: jax.Array, w: jax.Array, padding: Padding) -> jax.Array:
    """A thin convolution as the sum of its ``kh * kw * c_in`` shifted, scaled input copies."""
    x = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
    kh, kw, c_in, _ = w.shape
    out_h, out_w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    terms = [
        x[:, i : i + out_h, j : j + out_w, c : c + 1] * w[i, j, c]
        for i in range(kh)
        for j in range(kw)
        for c in range(c_in)
    ]
    return sum(terms[1:], terms[0])


def _conv_forward(x: jax.Array, w: jax.Array, padding: Padding) -> jax.Array:
    """A stride-1 convolution in the form measured fastest for its shape and the CPU library.

    Thin inputs: shifted multiply-adds.  Eigen convolutions: direct.  Under the
    YNNPACK library an unpadded convolution takes a slow kernel, so it is computed
    one row or column taller and cropped.
    """
    if _is_thin(*w.shape[:3]):
        return _conv_shifted(x, w, padding)
    if (
        eigen_convolutions()
        or padding != ((0, 0), (0, 0))
        or min(w.shape[2], w.shape[3]) < _MIN_CHANNELS_FOR_PADDED
    ):
        return lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=_DIMS)
    out_h, out_w = x.shape[1] - w.shape[0] + 1, x.shape[2] - w.shape[1] + 1
    # pad the longer output axis: one extra row of a [B, 1, T, C] sequence would double it
    extra = ((0, 1), (0, 0)) if out_h >= out_w else ((0, 0), (0, 1))
    y = lax.conv_general_dilated(x, w, (1, 1), extra, dimension_numbers=_DIMS)
    return y[:, :out_h, :out_w]


def _weight_grad_as_conv(x: jax.Array, dy: jax.Array, padding: Padding) -> jax.Array:
    """dL/dw as a forward convolution: the input's channels as the batch, its batch as channels.

    ``x^T [c_in, H, W, B]`` convolved with ``dy^T [out_h, out_w, B, c_out]`` as the
    kernel gives ``[c_in, kh, kw, c_out]``: Eigen's fast forward kernel, where XLA's
    own weight-gradient form is slow inside ``lax.scan`` on CPU.
    """
    x = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
    grad = lax.conv_general_dilated(
        x.transpose(3, 1, 2, 0), dy.transpose(1, 2, 0, 3), (1, 1), "VALID", dimension_numbers=_DIMS
    )
    return grad.transpose(1, 2, 0, 3)


def _weight_grad_im2col(
    x: jax.Array, dy: jax.Array, kernel: tuple[int, int], padding: Padding
) -> jax.Array:
    """dL/dw of a stride-1 convolution as im2col + matmul, a few images per scan step.

    The patches are laid out taps-first, ``[kh * kw * c_in, pixels]``, so the
    product is a plain ``(K, P) @ (P, c_out)`` (faster on XLA:CPU than contracting
    the pixel axis of a ``[P, K]`` patch matrix).
    """
    kh, kw = kernel
    n, out_h, out_w, c_out = dy.shape
    c_in = x.shape[-1]
    x = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
    per_image = out_h * out_w * kh * kw * c_in
    n_chunks = -(-n // max(1, _CHUNK_ELEMENTS // per_image))
    chunk = -(-n // n_chunks)
    extra = n_chunks * chunk - n
    if extra:  # zero images add nothing to the sum
        x = jnp.pad(x, ((0, extra), (0, 0), (0, 0), (0, 0)))
        dy = jnp.pad(dy, ((0, extra), (0, 0), (0, 0), (0, 0)))
    # One transpose of the input, channels before pixels, so that each chunk's
    # taps stack straight into [kh * kw * c_in, pixels] rows.
    xs = x.reshape(n_chunks, chunk, *x.shape[1:]).transpose(0, 4, 1, 2, 3)
    dys = dy.reshape(n_chunks, chunk * out_h * out_w, c_out)

    def add_chunk(acc, pair):
        xb, dyb = pair  # [c_in, chunk, H, W], [chunk * out_h * out_w, c_out]
        patches = jnp.stack(
            [xb[:, :, i : i + out_h, j : j + out_w] for i in range(kh) for j in range(kw)]
        ).reshape(kh * kw * c_in, -1)
        return acc + patches @ dyb, None

    acc0 = jnp.zeros((kh * kw * c_in, c_out), jnp.float32)
    if n_chunks == 1:
        grad, _ = add_chunk(acc0, (xs[0], dys[0]))
    else:
        grad, _ = lax.scan(add_chunk, acc0, (xs, dys))
    return grad.reshape(kh, kw, c_in, c_out)


def _weight_grad(
    x: jax.Array, dy: jax.Array, kernel: tuple[int, int], padding: Padding
) -> jax.Array:
    """dL/dw of a stride-1 convolution: im2col for thin inputs or under the library, else a conv."""
    if _is_thin(*kernel, x.shape[-1]) or not eigen_convolutions():
        return _weight_grad_im2col(x, dy, kernel, padding)
    return _weight_grad_as_conv(x, dy, padding)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_cpu(x: jax.Array, w: jax.Array, padding: Padding) -> jax.Array:
    return _conv_forward(x, w, padding)


def _conv_cpu_fwd(x, w, padding):
    return _conv_forward(x, w, padding), (x, w)


def _conv_cpu_bwd(padding, residuals, dy):
    x, w = residuals
    kh, kw = w.shape[0], w.shape[1]
    # The input gradient is a convolution of dy with the flipped, transposed kernel.
    w_t = jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2)
    back = (
        (kh - 1 - padding[0][0], kh - 1 - padding[0][1]),
        (kw - 1 - padding[1][0], kw - 1 - padding[1][1]),
    )
    dx = _conv_forward(dy, w_t, back)
    dw = _weight_grad(x, dy, (kh, kw), padding).astype(w.dtype)
    return dx, dw


_conv_cpu.defvjp(_conv_cpu_fwd, _conv_cpu_bwd)


def conv_nhwc(
    x: jax.Array, w: jax.Array, strides: tuple[int, int], padding: Padding, impl: str
) -> jax.Array:
    """A 2-D convolution NHWC x HWIO; ``impl='cpu'`` uses the CPU-fast kernels (stride 1 only)."""
    if impl == "cpu" and strides == (1, 1) and x.dtype == jnp.float32:
        return _conv_cpu(x, w, padding)
    return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_DIMS)


class Conv(nn.Module):
    """A convolution over 1 or 2 spatial axes (NWC or NHWC), SAME or VALID padded.

    Attributes:
        features: output channels.
        kernel_size: window size per spatial axis.
        strides: step per spatial axis.
        padding: "SAME" or "VALID".
        impl: "cpu" for the CPU-fast kernels, "xla" for the plain convolution.
    """

    features: int
    kernel_size: Sequence[int]
    strides: Sequence[int] | None = None
    padding: str = "SAME"
    use_bias: bool = True
    impl: str = "xla"
    dtype: jnp.dtype | None = None
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        one_d = x.ndim == 3
        kernel = tuple(self.kernel_size)
        strides = tuple(self.strides or (1,) * len(kernel))
        if one_d:  # a sequence [B, T, C] is an image of height 1
            x, kernel, strides = x[:, None], (1, *kernel), (1, *strides)
        w = self.param(
            "kernel", self.kernel_init, (*kernel, x.shape[-1], self.features), jnp.float32
        )
        pad = same_padding(kernel) if self.padding == "SAME" else ((0, 0), (0, 0))
        if self.padding == "SAME" and strides != (1, 1):
            # XLA's SAME for strided convolutions pads so that out = ceil(in / stride).
            pad = tuple(
                tuple(p) for p in lax.padtype_to_pads(x.shape[1:3], kernel, strides, "SAME")
            )
        dtype = self.dtype or x.dtype
        y = conv_nhwc(x.astype(dtype), w.astype(dtype), strides, pad, self.impl)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(
                dtype
            )
        return y[:, 0] if one_d else y


class Dropout(nn.Module):
    """Flax's ``nn.Dropout`` that also takes the rate as an array.

    A Python float draws the same mask from the same key as ``nn.Dropout``; an
    array (a per-trial rate under ``jax.vmap``, see ``engine.searching.population``) takes
    the general path, which for a rate of 0 keeps every unit, as the float path does.
    """

    rate: float | jax.Array
    deterministic: bool | None = None

    @nn.compact
    def __call__(self, inputs: jax.Array, deterministic: bool | None = None) -> jax.Array:
        deterministic = nn.merge_param("deterministic", self.deterministic, deterministic)
        concrete = isinstance(self.rate, (int, float))
        if deterministic or (concrete and self.rate == 0.0):
            return inputs
        if concrete and self.rate == 1.0:  # no 0 / 0 in the gradient
            return jnp.zeros_like(inputs)
        keep = 1.0 - self.rate
        mask = jax.random.bernoulli(self.make_rng("dropout"), p=keep, shape=inputs.shape)
        scale = keep if concrete else jnp.asarray(keep).astype(inputs.dtype)
        return lax.select(mask, inputs / scale, jnp.zeros_like(inputs))


def _window_slices(x: jax.Array, window: tuple[int, int]) -> list[jax.Array]:
    """The ``wh * ww`` strided views of [B, H, W, C], one per position in a pooling window."""
    wh, ww = window
    return [x[:, i::wh, j::ww] for i in range(wh) for j in range(ww)]


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def _max_pool(x: jax.Array, window: tuple[int, int]) -> jax.Array:
    """Max over non-overlapping windows of [B, H, W, C] (H, W multiples of the window)."""
    views = _window_slices(x, window)
    out = views[0]
    for v in views[1:]:
        out = jnp.maximum(out, v)
    return out


def _max_pool_fwd(x, window):
    y = _max_pool(x, window)
    return y, (x, y)


def _upsample(a: jax.Array, window: tuple[int, int]) -> jax.Array:
    """Each value of [B, H2, W2, C] repeated over its window: [B, H2 * wh, W2 * ww, C]."""
    b, h2, w2, c = a.shape
    wh, ww = window
    wide = jnp.broadcast_to(a[:, :, None, :, None, :], (b, h2, wh, w2, ww, c))
    return wide.reshape(b, h2 * wh, w2 * ww, c)


def _max_pool_bwd(window, residuals, dy):
    # jnp.max's own gradient (a tie shares the gradient equally), written elementwise:
    # its reduce over the window, the way jax derives it, is slow on CPU.  The full-size
    # gradient is one select against the upsampled maxima, which XLA fuses with the
    # activation's backward (stacking four strided pieces was slower).
    x, y = residuals
    ties = sum((v == y).astype(dy.dtype) for v in _window_slices(x, window))
    return (jnp.where(x == _upsample(y, window), _upsample(dy / ties, window), 0),)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def pool(x: jax.Array, kind: str, window: int = 2, impl: str = "xla") -> jax.Array:
    """Non-overlapping max or average pooling over the spatial axes.

    A trailing row/column that does not fill a window is dropped (VALID pooling).
    Works for [B, T, C] and [B, H, W, C].  With ``impl="cpu"`` max pooling is
    elementwise maxima of strided views with the same gradient as ``jnp.max`` (see
    ``_max_pool_bwd``), which XLA:CPU fuses with the bias and activation before it;
    GPU/TPU keep the reshape + ``jnp.max`` their throughput was measured with.
    """
    one_d = x.ndim == 3
    if one_d:  # a sequence [B, T, C] is an image of height 1
        x = x[:, None]
    windows = (1 if one_d else window, window)
    b, h, w, c = x.shape
    h2, w2 = h // windows[0], w // windows[1]
    x = x[:, : h2 * windows[0], : w2 * windows[1]]
    if kind == "max" and impl == "cpu":
        y = _max_pool(x, windows)
    else:
        reduce = jnp.max if kind == "max" else jnp.mean
        y = reduce(x.reshape(b, h2, windows[0], w2, windows[1], c), axis=(2, 4))
    return y[:, 0] if one_d else y


def global_pool(x: jax.Array) -> jax.Array:
    """Mean over every spatial axis: [B, ..., C] -> [B, C]."""
    return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))
