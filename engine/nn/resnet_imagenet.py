"""The torchvision/timm ResNet family as Flax modules, so their weights can be a ``model.base``.

Its stem and blocks build the network a ``resnet`` plan with ``stem="imagenet"``,
``block="bottleneck"`` or ``stage_blocks`` names (``engine.nn.models.make_resnet_family``
assembles them; the plain CIFAR-style ResNet is ``engine.nn.models``' too).  The layout follows
torchvision's ``ResNet`` exactly, so a state dict maps onto it one tensor per
parameter (``engine.pretrained.imports``) and gives the same logits:

* stem (``blocks_0``): 7x7 convolution, stride 2, padding 3 -> BatchNorm ->
  activation -> 3x3 max pooling, stride 2, padding 1;
* stages of BasicBlocks (resnet18/34: two 3x3 convolutions) or Bottlenecks
  (resnet50+: 1x1 -> 3x3 -> 1x1 at 4x the width, the stride on the 3x3, as in
  torchvision's "ResNet v1.5"), a 1x1 projection where the shape changes;
* global average pooling, then the head.

Strided convolutions pad explicitly and symmetrically, as PyTorch does; XLA's
``SAME`` would pad the strided ones asymmetrically and shift every feature map.
Every residual block is one base block, so ``partial_fine_tune`` counts them.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from advisor.contract.schemas import ModelPlan
from engine.nn.layers import ACTIVATIONS, Conv

EXPANSION = {"basic": 1, "bottleneck": 4}


def _batch_norm(train: bool, dtype, name: str, zero_scale: bool = False) -> nn.BatchNorm:
    # epsilon 1e-5 as torch.nn.BatchNorm2d; momentum 0.9 here is torch's momentum 0.1
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        dtype=dtype,
        name=name,
        scale_init=nn.initializers.zeros if zero_scale else nn.initializers.ones,
    )


def _conv(
    x: jax.Array, features: int, kernel: int, stride: int, impl: str, dtype, name: str
) -> jax.Array:
    """A bias-free convolution padded like PyTorch's ``padding=kernel // 2``."""
    if stride == 1:  # SAME is the symmetric padding for odd kernels, and keeps the CPU kernels
        return Conv(features, (kernel, kernel), use_bias=False, impl=impl, dtype=dtype, name=name)(
            x
        )
    p = kernel // 2
    x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    return Conv(
        features,
        (kernel, kernel),
        (stride, stride),
        padding="VALID",
        use_bias=False,
        impl=impl,
        dtype=dtype,
        name=name,
    )(x)


def max_pool_3x3(x: jax.Array) -> jax.Array:
    """3x3 max pooling, stride 2, padding 1 (padding never wins the max)."""
    return lax.reduce_window(
        x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (1, 1), (0, 0))
    )


class ImageNetStem(nn.Module):
    """7x7/2 convolution -> BatchNorm -> activation -> 3x3/2 max pooling."""

    filters: int
    activation: str
    impl: str = "xla"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        z = _batch_norm(train, self.dtype, "bn")(
            _conv(x, self.filters, 7, 2, self.impl, self.dtype, "conv")
        )
        self.sow("intermediates", "preact", z)
        return max_pool_3x3(ACTIVATIONS[self.activation](z))


class TorchResidualBlock(nn.Module):
    """torchvision's BasicBlock (``block="basic"``) or Bottleneck (``block="bottleneck"``)."""

    width: int
    strides: int
    block: str
    activation: str
    impl: str = "xla"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        out = self.width * EXPANSION[self.block]
        conv = lambda h, f, k, s, name: _conv(h, f, k, s, self.impl, self.dtype, name)  # noqa: E731
        if self.block == "basic":
            y = act(
                _batch_norm(train, self.dtype, "bn1")(conv(x, self.width, 3, self.strides, "conv1"))
            )
            # zero-initialised last BN scale: each fresh block starts as the identity (Goyal et al. 2017)
            y = _batch_norm(train, self.dtype, "bn2", zero_scale=True)(
                conv(y, self.width, 3, 1, "conv2")
            )
        else:
            y = act(_batch_norm(train, self.dtype, "bn1")(conv(x, self.width, 1, 1, "conv1")))
            y = act(
                _batch_norm(train, self.dtype, "bn2")(conv(y, self.width, 3, self.strides, "conv2"))
            )
            y = _batch_norm(train, self.dtype, "bn3", zero_scale=True)(conv(y, out, 1, 1, "conv3"))
        if x.shape[-1] != out or self.strides != 1:
            x = _batch_norm(train, self.dtype, "proj_bn")(conv(x, out, 1, self.strides, "proj"))
        z = y + x
        self.sow("intermediates", "preact", z)
        return act(z)


def stage_blocks(model: ModelPlan) -> list[int]:
    """Residual blocks in each stage: ``stage_blocks``, else ``blocks_per_stage`` everywhere."""
    return (
        list(model.stage_blocks)
        if model.stage_blocks
        else [model.blocks_per_stage] * len(model.filters)
    )
