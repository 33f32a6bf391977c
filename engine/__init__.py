"""The execution backend: JAX/Flax/optax training of an advisor Plan.

``engine.run.run_plan(plan, RunOptions(...))`` is the entry point (``advisor.run``
calls it).  The names below are the engine's public API, imported lazily so
that ``import engine`` defines nothing heavy until one is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_API = {
    "run_plan": "engine.run",
    "RunOptions": "engine.run",
    "make_train_step": "engine.training.train",
    "Registry": "engine.runtime.registry",
    "LOSSES": "engine.optim.losses",
    "OPTIMIZERS": "engine.optim.optimizers",
    "SCHEDULES": "engine.optim.schedules",
    "MODELS": "engine.nn.models",
    "METRICS": "engine.optim.metrics",
    "AUGMENTATIONS": "engine.datasets.augment",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
