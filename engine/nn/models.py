"""The networks a plan can name: the ``MODELS`` registry (mlp, cnn, resnet, _test).

Every model is a ``Network``: a *base* (the feature extractor, the part a later
plan can reuse) and a *head* (dense layers sized to the task).  The parameter
tree says which is which, so freezing and transfer work by path::

    params["base"]["blocks_0"], ..., params["base"]["blocks_{n-1}"]   # lowest first
    params["head"]["dense_0"], ..., params["head"]["output"]
    params["head"]["conv_0"], ..., params["head"]["output"]   # a grid detector's GridHead

``Network(x, train=..., frozen_blocks=k)`` runs the lowest ``k`` base blocks in
inference mode (BatchNorm uses its running statistics, no dropout), which is
what a frozen base needs.  Each block records its pre-activation with
``sow("intermediates", "preact", ...)`` for the dead-unit diagnostic.
Detection models end in a box decoder, so their first four outputs are a valid
box ``(x1, y1, x2, y2)`` in [0, 1].  The GAN pair lives in ``engine.training.gan``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from advisor.contract.errors import InputError
from advisor.contract.schemas import ModelPlan
from engine.nn.detection_grid import decode_grid
from engine.nn.layers import ACTIVATIONS, Conv, Dropout, global_pool, pool
from engine.nn.resnet_imagenet import ImageNetStem, TorchResidualBlock, stage_blocks
from engine.runtime import compiler
from engine.runtime.registry import Registry

MODELS: Registry = Registry("model")

# Activations with a flat region below zero, where a unit can die.
DEAD_UNIT_ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "silu")


def _norm(batch_norm: bool, train: bool, dtype) -> Callable[[jax.Array], jax.Array]:
    if not batch_norm:
        return lambda h: h
    # momentum 0.9 as in the Keras/Flax examples; float32 statistics even in bf16 runs
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=dtype, name="bn")


class DenseBlock(nn.Module):
    """Dense -> [BatchNorm] -> activation -> dropout."""

    units: int
    activation: str
    dropout: float
    batch_norm: bool
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        z = nn.Dense(self.units, dtype=self.dtype, name="dense")(x)
        z = _norm(self.batch_norm, train, self.dtype)(z)
        self.sow("intermediates", "preact", z)
        h = ACTIVATIONS[self.activation](z)
        return Dropout(self.dropout, deterministic=not train)(h)


class ConvBlock(nn.Module):
    """Conv -> [BatchNorm] -> activation -> [2x2 pooling]."""

    filters: int
    kernel_size: int
    pooling: str | None
    activation: str
    batch_norm: bool
    impl: str = "xla"
    dtype: jnp.dtype = jnp.float32
    padding: str = "SAME"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        spatial = x.ndim - 2
        z = Conv(
            self.filters,
            (self.kernel_size,) * spatial,
            padding=self.padding,
            impl=self.impl,
            dtype=self.dtype,
            name="conv",
        )(x)
        z = _norm(self.batch_norm, train, self.dtype)(z)
        self.sow("intermediates", "preact", z)
        h = ACTIVATIONS[self.activation](z)
        if self.pooling and min(h.shape[1:-1]) >= 2:
            h = pool(h, self.pooling, impl=self.impl)
        return h


class ResidualBlock(nn.Module):
    """The ResNet BasicBlock: two 3x3 convolutions with BatchNorm and a shortcut."""

    filters: int
    strides: int
    activation: str
    impl: str = "xla"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        spatial = x.ndim - 2
        act = ACTIVATIONS[self.activation]
        k3, s = (3,) * spatial, (self.strides,) * spatial

        def bn(name: str) -> nn.BatchNorm:
            return nn.BatchNorm(
                use_running_average=not train, momentum=0.9, dtype=self.dtype, name=name
            )

        y = Conv(
            self.filters, k3, s, use_bias=False, impl=self.impl, dtype=self.dtype, name="conv1"
        )(x)
        y = act(bn("bn1")(y))
        y = Conv(self.filters, k3, use_bias=False, impl=self.impl, dtype=self.dtype, name="conv2")(
            y
        )
        # zero-initialised last BN scale: each block starts as the identity (Goyal et al. 2017)
        y = nn.BatchNorm(
            use_running_average=not train,
            momentum=0.9,
            dtype=self.dtype,
            scale_init=nn.initializers.zeros,
            name="bn2",
        )(y)
        if x.shape[-1] != self.filters or self.strides != 1:
            x = Conv(
                self.filters,
                (1,) * spatial,
                s,
                use_bias=False,
                impl=self.impl,
                dtype=self.dtype,
                name="proj",
            )(x)
            x = bn("proj_bn")(x)
        z = y + x
        self.sow("intermediates", "preact", z)
        return act(z)


class Base(nn.Module):
    """A stack of blocks, named ``blocks_0`` (lowest) ... by Flax; the lowest ``frozen_blocks`` run in inference mode."""

    blocks: Sequence[nn.Module]
    flatten_input: bool = False
    pool_output: bool = False

    def __call__(self, x: jax.Array, train: bool, frozen_blocks: int = 0) -> jax.Array:
        if self.flatten_input:
            x = x.reshape(x.shape[0], -1)
        for i, block in enumerate(self.blocks):
            x = block(x, train=train and i >= frozen_blocks)
        return global_pool(x) if self.pool_output else x


class Head(nn.Module):
    """Flatten -> ([dropout] -> dense -> activation)* -> [dropout] -> output."""

    units: Sequence[int]
    output_units: int
    activation: str
    dropout: float
    dropout_first: bool
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        h = x.reshape(x.shape[0], -1)
        for i, units in enumerate(self.units):
            if self.dropout_first or i > 0:
                h = Dropout(self.dropout, deterministic=not train)(h)
            z = nn.Dense(units, dtype=self.dtype, name=f"dense_{i}")(h)
            self.sow("intermediates", "preact", z)
            h = ACTIVATIONS[self.activation](z)
        if self.dropout_first or self.units:
            h = Dropout(self.dropout, deterministic=not train)(h)
        return nn.Dense(self.output_units, dtype=self.dtype, name="output")(h).astype(jnp.float32)


def _adaptive_max(x: jax.Array, cells: int, axis: int) -> jax.Array:
    """Max over ``cells`` near-equal windows along ``axis`` (they overlap when the axis is short)."""
    n = x.shape[axis]
    windows = [
        jax.lax.slice_in_dim(x, (i * n) // cells, -(-(i + 1) * n // cells), axis=axis)
        for i in range(cells)
    ]
    return jnp.stack([w.max(axis=axis) for w in windows], axis=axis)


class GridHead(nn.Module):
    """A grid detector's head, the same weights in every cell (anchor-free, convolutional).

    The base's feature map is max-pooled to ``grid`` x ``grid`` cells; each of ``units``
    is a 3x3 convolution there (a cell sees its neighbours), and the output is a 1x1
    convolution of ``output_units / grid**2`` values a cell, flattened row by row as
    ``engine.nn.detection_grid.decode_grid`` reads them.  Sharing the head across cells
    lets every cell of every image train it, where a dense head learns each cell apart.
    """

    grid: int
    units: Sequence[int]
    output_units: int
    activation: str
    dropout: float
    impl: str = "xla"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        if x.ndim != 4:
            raise InputError(
                f"model.grid: a grid head needs an image feature map [H, W, C]; the base gives "
                f"{list(x.shape[1:])} (use arch 'cnn' on images)"
            )
        g = self.grid
        h = _adaptive_max(_adaptive_max(x, g, 1), g, 2)
        for i, units in enumerate(self.units):
            h = Dropout(self.dropout, deterministic=not train)(h)
            z = Conv(units, (3, 3), impl=self.impl, dtype=self.dtype, name=f"conv_{i}")(h)
            self.sow("intermediates", "preact", z)
            h = ACTIVATIONS[self.activation](z)
        h = Dropout(self.dropout, deterministic=not train)(h)
        out = nn.Dense(self.output_units // (g * g), dtype=self.dtype, name="output")(h)
        return out.reshape(x.shape[0], -1).astype(jnp.float32)


def decode_boxes(outputs: jax.Array) -> jax.Array:
    """Detection outputs: the first four become a box (x1, y1, x2, y2) in [0, 1].

    The network predicts a centre and a size through a sigmoid, so every box is
    well formed (x1 <= x2, y1 <= y2) from the first step; class logits pass through.
    """
    centre = nn.sigmoid(outputs[:, :2])
    size = nn.sigmoid(outputs[:, 2:4])
    low = jnp.clip(centre - size / 2, 0.0, 1.0)
    high = jnp.clip(centre + size / 2, 0.0, 1.0)
    return jnp.concatenate([low, high, outputs[:, 4:]], axis=1)


class Network(nn.Module):
    """base -> head (-> box decoder for detection)."""

    base: Base
    head: Head | GridHead
    detection: bool = False
    grid: int | None = None  # detection of several objects: cells a side (engine.nn.detection_grid)

    def __call__(self, x: jax.Array, train: bool = False, frozen_blocks: int = 0) -> jax.Array:
        features = self.base(x, train=train, frozen_blocks=frozen_blocks)
        outputs = self.head(features, train=train)
        if self.detection and self.grid:
            return decode_grid(outputs, self.grid)
        return decode_boxes(outputs) if self.detection else outputs

    @property
    def n_blocks(self) -> int:
        """Number of base blocks (the unit partial fine-tuning counts in)."""
        return len(self.base.blocks)


def _head(model: ModelPlan, dropout_first: bool, dtype) -> Head:
    return Head(
        units=tuple(model.head_units),
        output_units=model.output_units,
        activation=model.activation,
        dropout=model.dropout,
        dropout_first=dropout_first,
        dtype=dtype,
    )


@MODELS.register("mlp")
def make_mlp(
    model: ModelPlan, input_shape: Sequence[int], *, impl: str, dtype, task: str
) -> Network:
    """hidden_layers x (dense units -> activation -> dropout), then the head."""
    del impl, input_shape
    blocks = tuple(
        DenseBlock(model.units, model.activation, model.dropout, model.batch_norm, dtype)
        for i in range(model.hidden_layers)
    )
    return Network(
        Base(blocks, flatten_input=True), _head(model, False, dtype), task == "detection"
    )


def _spatial_rank(input_shape: Sequence[int], arch: str) -> int:
    if len(input_shape) not in (2, 3):
        raise InputError(
            f"model.arch: {arch!r} needs an image [H, W, C] or a sequence [T, C]; "
            f"the input shape is {list(input_shape)} (use arch 'mlp' for tables)"
        )
    return len(input_shape) - 1


@MODELS.register("cnn")
def make_cnn(
    model: ModelPlan, input_shape: Sequence[int], *, impl: str, dtype, task: str
) -> Network:
    """One conv block per entry of ``filters`` (1-D for sequences, 2-D for images), then the head."""
    _spatial_rank(input_shape, "cnn")
    blocks = tuple(
        ConvBlock(
            f, model.kernel_size, model.pooling, model.activation, model.batch_norm, impl, dtype
        )
        for i, f in enumerate(model.filters)
    )
    if task == "detection" and model.grid:  # several objects: one head shared by the cells
        head = GridHead(
            model.grid,
            tuple(model.head_units),
            model.output_units,
            model.activation,
            model.dropout,
            impl,
            dtype,
        )
        return Network(Base(blocks), head, True)
    return Network(Base(blocks), _head(model, True, dtype), task == "detection")


@MODELS.register("resnet")
def make_resnet(
    model: ModelPlan, input_shape: Sequence[int], *, impl: str, dtype, task: str
) -> Network:
    """CIFAR-style ResNet: a 3x3 stem, then per stage ``blocks_per_stage`` BasicBlocks of width
    ``filters[s]`` (stride 2 at the start of each stage after the first), global average pool.
    An ImageNet stem, Bottleneck blocks or per-stage block counts build torchvision's layout
    (``engine.nn.resnet_imagenet``)."""
    if model.stem == "imagenet" or model.block == "bottleneck" or model.stage_blocks is not None:
        return make_resnet_family(model, input_shape, impl=impl, dtype=dtype, task=task)
    _spatial_rank(input_shape, "resnet")
    blocks: list[nn.Module] = [
        ConvBlock(model.filters[0], 3, None, model.activation, True, impl, dtype)
    ]
    for stage, width in enumerate(model.filters):
        for j in range(model.blocks_per_stage):
            strides = 2 if stage > 0 and j == 0 else 1
            blocks.append(ResidualBlock(width, strides, model.activation, impl, dtype))
    return Network(
        Base(tuple(blocks), pool_output=True), _head(model, True, dtype), task == "detection"
    )


def make_resnet_family(
    model: ModelPlan, input_shape: Sequence[int], *, impl: str, dtype, task: str
) -> Network:
    """The torchvision-layout ResNet a plan describes (stem, block type, blocks per stage)."""
    if _spatial_rank(input_shape, "resnet") != 2:
        raise InputError(
            "model.arch: the torchvision-layout ResNet (stem 'imagenet', bottleneck blocks or stage_blocks) "
            "takes images [H, W, C]; for sequences use basic blocks and blocks_per_stage"
        )
    if model.stem == "imagenet":
        blocks: list[nn.Module] = [ImageNetStem(model.filters[0], model.activation, impl, dtype)]
    else:
        blocks = [ConvBlock(model.filters[0], 3, None, model.activation, True, impl, dtype)]
    for stage, (width, count) in enumerate(zip(model.filters, stage_blocks(model), strict=True)):
        for j in range(count):
            strides = 2 if stage > 0 and j == 0 else 1
            blocks.append(
                TorchResidualBlock(
                    width, strides, model.block or "basic", model.activation, impl, dtype
                )
            )
    return Network(
        Base(tuple(blocks), pool_output=True), _head(model, True, dtype), task == "detection"
    )


@MODELS.register("_test")
def make_test_model(
    model: ModelPlan, input_shape: Sequence[int], *, impl: str, dtype, task: str
) -> Network:
    """A two-block, eight-unit network for fast tests (any input rank)."""
    del impl, input_shape
    blocks = tuple(
        DenseBlock(8, model.activation, model.dropout, model.batch_norm, dtype) for i in range(2)
    )
    return Network(
        Base(blocks, flatten_input=True), _head(model, False, dtype), task == "detection"
    )


def build_model(
    model: ModelPlan, input_shape: Sequence[int], task: str, *, impl: str = "xla", dtype=jnp.float32
) -> Network:
    """The network a plan's ``model`` section names, for inputs of ``input_shape``.

    Args:
        model: the plan's model section (``arch`` picks the registry entry).
        input_shape: one input without the batch axis.
        task: the plan's task (detection adds the box decoder, or with ``model.grid`` the
            grid decoder of ``engine.nn.detection_grid``).
        impl: "cpu" for the CPU-fast convolution kernels, "xla" otherwise.
        dtype: compute dtype (bfloat16 for mixed precision; parameters stay float32).
    """
    network = MODELS.get(model.arch)(model, input_shape, impl=impl, dtype=dtype, task=task)
    if task == "detection" and model.grid:  # engine.datasets.checks sized output_units for the grid
        network = network.clone(grid=model.grid)
    return network


def init_variables(network: nn.Module, key: jax.Array, input_shape: Sequence[int]) -> dict:
    """Parameters (and batch statistics) for one example batch of zeros."""
    x = jnp.zeros((1, *input_shape), jnp.float32)
    variables = compiler.jit(lambda k: network.init({"params": k, "dropout": k}, x, train=False))(
        key
    )
    variables = dict(variables)
    variables.pop("intermediates", None)
    return variables
