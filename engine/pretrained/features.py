"""The ``feature_extractor`` strategy: run the frozen base once, train the head on the cache.

A frozen base computes the same features every epoch (inference mode:
BatchNorm on its running statistics, no dropout), so ``freeze_base`` repeats
that forward pass for nothing (only the forward: no gradient flows into frozen
blocks, ``engine.optim.freeze.split_frozen``).  Here the base runs once over the
training and validation inputs (``extract_features``, fixed-size jitted
chunks), and training is supervised training of ``HeadNetwork`` (the plan's
head alone) on the cached feature vectors, through the same compiled step,
epoch and evaluation as every other plan (``engine.training.supervised``).  Same seed,
same batches, same dropout keys: the head learns what ``freeze_base`` would
teach it, and an epoch costs what the head's training costs, so the gain is
the base's share of a step (``benchmarks/feature_cache_bench.py``; figures in
benchmarks/RESULTS.md).  The run's checkpoint is the whole network again: the
base's weights untouched, the trained head.

Inputs cannot be augmented (the features are computed once), so a plan with
augmentation is an ``InputError``; the rules already leave it out.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import numpy as np

from advisor.contract.errors import InputError
from advisor.contract.schemas import Plan
from engine.datasets.data import Dataset
from engine.nn.models import Head, Network, decode_boxes
from engine.runtime import compiler
from engine.training.fit import Trainer
from engine.training.train import choose_loop

# Examples per compiled forward call of the base while caching.
FEATURE_CHUNK = 512


class HeadNetwork(nn.Module):
    """The head (and box decoder) of a ``Network``, fed with cached base features.

    Its parameter tree is ``{"head": ...}``, the head's subtree of the full
    network, under the same module path, so initialisation and dropout keys match.
    """

    head: Head
    detection: bool = False

    def __call__(self, x: jax.Array, train: bool = False, frozen_blocks: int = 0) -> jax.Array:
        del frozen_blocks  # no base here: every parameter is the head's
        outputs = self.head(x, train=train)
        return decode_boxes(outputs) if self.detection else outputs

    @property
    def n_blocks(self) -> int:
        return 0


def make_extract(network: Network, variables: dict, chunk: int = FEATURE_CHUNK):
    """``extract(x) -> features``: the base in inference mode over ``x`` (numpy), in fixed-size jitted chunks."""
    base_vars = _strip({k: v for k, v in variables.items() if "base" in v})

    @compiler.jit
    def forward(x):
        return network.base.apply(base_vars, x, train=False)

    def extract(x: np.ndarray) -> np.ndarray:
        n = len(x)
        size = min(n, chunk)
        out = []
        for start in range(0, n, size):
            index = np.minimum(
                np.arange(start, start + size), n - 1
            )  # the last chunk repeats its final example
            out.append(np.asarray(forward(x[index]))[: min(size, n - start)])
        return np.concatenate(out).reshape(n, -1).astype(np.float32)

    return extract


def _strip(tree: dict) -> dict:
    """{"params": {"base": b}} -> {"params": b}: the base module's own variables."""
    return {collection: sub["base"] for collection, sub in tree.items()}


def extract_features(network: Network, variables: dict, dataset: Dataset) -> Dataset:
    """``dataset`` with its inputs replaced by the frozen base's features (flattened)."""
    extract = make_extract(network, variables)
    train, val = extract(dataset.x_train), extract(dataset.x_val)
    return dataclasses.replace(dataset, x_train=train, x_val=val, input_shape=(train.shape[1],))


def head_variables(variables: dict) -> dict:
    """The head's variables in ``HeadNetwork``'s tree."""
    return {"params": {"head": variables["params"]["head"]}}


def build_feature_extractor(
    plan: Plan, network: Network, dataset: Dataset, device: jax.Device, variables: dict
) -> Trainer:
    """The ``Trainer`` of a feature_extractor plan: the head's supervised training on the cache.

    Its ``variables_of`` rebuilds the full network's variables (base untouched,
    trained head) from a state; it shards nothing (``placement`` None).

    Raises:
        InputError: the plan augments its inputs, which cached features cannot be, or
            detects on a grid, whose convolutional head needs the feature map.
    """
    from engine.training.supervised import build_supervised

    if plan.model.grid:
        raise InputError(
            "freeze.strategy: feature_extractor caches the base's features flattened, and a grid "
            "detector's head reads them as a map; use strategy freeze_base"
        )
    if plan.regularization.augmentation:
        raise InputError(
            "regularization.augmentation: feature_extractor computes the base's features once, so inputs "
            "cannot be augmented; remove the augmentations or use strategy freeze_base"
        )
    cached = extract_features(network, variables, dataset)
    head_net = HeadNetwork(network.head, network.detection)
    loop = choose_loop(device.platform, has_conv=False)
    head = build_supervised(plan, head_net, cached, device, head_variables(variables), loop=loop)
    frozen = jax.device_get(variables)

    def variables_of(s) -> dict:
        params = {**frozen["params"], "head": s.params["head"]}
        return {**frozen, "params": params}

    return dataclasses.replace(head, variables_of=variables_of, placement=None)
