"""A torchvision-layout ResNet state dict made of numpy arrays, for the import tests (no torch needed).

``resnet_state(widths, stage_blocks, block)`` has exactly the tensor names and
shapes ``torchvision.models.resnet`` (and timm's ResNet) write: ``conv1``,
``bn1``, ``layer{s}.{j}.conv{k}``/``bn{k}``, ``downsample.0/1`` where the shape
changes, ``fc``.  Values are random, BatchNorm variances positive.
"""

from __future__ import annotations

import numpy as np

EXPANSION = {"basic": 1, "bottleneck": 4}


def _bn(state: dict, prefix: str, channels: int, rng: np.random.Generator) -> None:
    state[f"{prefix}.weight"] = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    state[f"{prefix}.bias"] = rng.normal(0, 0.1, channels).astype(np.float32)
    state[f"{prefix}.running_mean"] = rng.normal(0, 0.1, channels).astype(np.float32)
    state[f"{prefix}.running_var"] = rng.uniform(0.5, 1.5, channels).astype(np.float32)
    state[f"{prefix}.num_batches_tracked"] = np.array(7, np.int64)


def _conv(state: dict, key: str, out: int, inp: int, k: int, rng: np.random.Generator) -> None:
    state[key] = (rng.normal(0, 1, (out, inp, k, k)) / np.sqrt(inp * k * k)).astype(np.float32)


def resnet_state(
    widths=(4, 8),
    stage_blocks=(1, 1),
    block: str = "basic",
    n_classes: int = 3,
    in_channels: int = 3,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A random state dict of a torchvision ResNet with these widths, blocks per stage and block type."""
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}
    _conv(state, "conv1.weight", widths[0], in_channels, 7, rng)
    _bn(state, "bn1", widths[0], rng)
    channels = widths[0]
    for s, (width, count) in enumerate(zip(widths, stage_blocks, strict=True), start=1):
        out = width * EXPANSION[block]
        for j in range(count):
            prefix = f"layer{s}.{j}"
            if block == "basic":
                _conv(state, f"{prefix}.conv1.weight", width, channels, 3, rng)
                _conv(state, f"{prefix}.conv2.weight", width, width, 3, rng)
            else:
                _conv(state, f"{prefix}.conv1.weight", width, channels, 1, rng)
                _conv(state, f"{prefix}.conv2.weight", width, width, 3, rng)
                _conv(state, f"{prefix}.conv3.weight", out, width, 1, rng)
            for k in range(1, 3 if block == "basic" else 4):
                _bn(
                    state,
                    f"{prefix}.bn{k}",
                    out if (k == 3 or (block == "basic" and k == 2)) else width,
                    rng,
                )
            strided = s > 1 and j == 0
            if channels != out or strided:
                _conv(state, f"{prefix}.downsample.0.weight", out, channels, 1, rng)
                _bn(state, f"{prefix}.downsample.1", out, rng)
            channels = out
    state["fc.weight"] = rng.normal(0, 0.1, (n_classes, channels)).astype(np.float32)
    state["fc.bias"] = rng.normal(0, 0.1, n_classes).astype(np.float32)
    return state
