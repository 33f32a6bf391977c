"""Small plans for the engine tests: seconds to train on two CPU cores.

``make_plan(**changes)`` starts from an iris MLP plan and applies changes by
dotted path (``make_plan(**{"model.arch": "_test"})``); ``steps_per_epoch`` is
kept consistent with ``n_train`` and ``batch_size``.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from advisor.contract.schemas import Plan

IRIS = {
    "name": "iris-test",
    "task": "multiclass",
    "modality": "tabular",
    "input_shape": [4],
    "n_classes": 3,
    "n_train": 120,
    "data": {"source": {"kind": "builtin", "name": "iris"}, "val_fraction": 0.2, "split_seed": 0},
    "model": {"arch": "mlp", "hidden_layers": 1, "units": 16, "output_units": 3},
    "loss": {"name": "sparse_categorical_crossentropy"},
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "schedule": {"name": "constant"},
    "batch_size": 32,
    "epochs": 3,
    "steps_per_epoch": 4,
    "freeze": {"strategy": "from_scratch"},
    "regularization": {},
    "metrics": ["accuracy"],
    "seed": 0,
}

DIGITS_CNN = {
    **IRIS,
    "name": "digits-cnn-test",
    "modality": "image",
    "input_shape": [8, 8, 1],
    "n_classes": 10,
    "n_train": 300,
    "data": {
        "source": {"kind": "builtin", "name": "digits", "subsample": 300},
        "val_fraction": 0.2,
    },
    "model": {
        "arch": "cnn",
        "filters": [4, 8],
        "kernel_size": 3,
        "pooling": "max",
        "output_units": 10,
        "batch_norm": True,
    },
    "batch_size": 64,
}

# A small Wasserstein GAN on the 1,438 digits: an MLP generator (latent 8) and critic.
DIGITS_GAN = {
    **IRIS,
    "task": "gan",
    "modality": "image",
    "input_shape": [8, 8, 1],
    "n_classes": None,
    "n_train": 1438,
    "metrics": [],
    "batch_size": 256,
    "data": {**IRIS["data"], "source": {"kind": "builtin", "name": "digits"}},
    "model": {
        "arch": "mlp",
        "hidden_layers": 1,
        "units": 16,
        "output_units": 64,
        "latent_dim": 8,
        "activation": "leaky_relu",
    },
    "loss": {"name": "wasserstein", "params": {"gradient_penalty": 10.0}},
}


def make_plan(base: dict | None = None, **changes: Any) -> Plan:
    """A validated Plan from ``base`` (default IRIS) with dotted-path changes."""
    data = copy.deepcopy(base or IRIS)
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    data["steps_per_epoch"] = math.ceil(data["n_train"] / data["batch_size"])
    return Plan.model_validate(data)


def build_phases(plan: Plan, loop: str | None = None):
    """The ``Trainer`` (phases, initial state) of ``plan`` on the CPU (the base from model.base, if any)."""
    import jax

    from engine.datasets.data import load_data
    from engine.nn.models import build_model
    from engine.run import initial_variables
    from engine.training.supervised import build_supervised

    network = build_model(plan.model, plan.input_shape, plan.task, impl="cpu")
    variables, _ = initial_variables(plan, network, ".", [])
    return build_supervised(
        plan, network, load_data(plan), jax.devices("cpu")[0], variables, loop=loop
    )


def fit_plan(plan: Plan, loop: str | None = None, progress=False):
    """Train ``plan`` in memory on the CPU (no run directory); returns the FitResult."""
    from engine.training.fit import fit

    return fit(build_phases(plan, loop), plan, progress=progress)
