"""advisor: an expert system that plans deep-learning training, explains every
choice, trains the plan on JAX/Flax/optax and diagnoses the run.

The public API, re-exported here and imported lazily so that ``import advisor``
stays free of jax and fast::

    from advisor import recommend, explain, diagnose, run, load_profile
    plan = recommend("examples/profiles/digits_mlp.json")
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_API = {
    "recommend": "advisor.expert.recommending",
    "explain": "advisor.expert.explaining",
    "diagnose": "advisor.diagnostics.diagnosis",
    "run": "advisor.workflows.running",
    "search": "advisor.workflows.searching",
    "auto": "advisor.workflows.designing",
    "load_profile": "advisor.contract.loading",
    "load_plan": "advisor.contract.loading",
    "load_history": "advisor.readers",
    "load_histories": "advisor.readers",
    "load": "advisor.workflows.using",
    "load_exported": "advisor.workflows.using",
    "TrainedModel": "advisor.workflows.using",
    "Profile": "advisor.contract.schemas",
    "Plan": "advisor.contract.schemas",
    "History": "advisor.contract.schemas",
    "Diagnosis": "advisor.contract.schemas",
    "RunResult": "advisor.contract.schemas",
    "Lineage": "advisor.contract.schemas",
    "AdvisorError": "advisor.contract.errors",
    "InputError": "advisor.contract.errors",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'advisor' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
