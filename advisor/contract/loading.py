"""Load the project's own files (profiles and plans) from a path, a dict or a model."""

from __future__ import annotations

from pathlib import Path

from advisor.contract.io import load_model
from advisor.contract.schemas import Plan, Profile


def load_profile(source: Profile | dict | str | Path) -> Profile:
    """A validated Profile from a Profile, a dict or a JSON file path.

    Raises:
        InputError: one line naming the file, the field and what was expected.
    """
    return load_model(Profile, source, what="profile")


def load_plan(source: Plan | dict | str | Path) -> Plan:
    """A validated Plan from a Plan, a dict or a JSON file path.

    Raises:
        InputError: one line naming the file, the field and what was expected.
    """
    return load_model(Plan, source, what="plan")


def resolve_plan_paths(plan: Plan, base_dir: str | Path) -> Plan:
    """``plan`` with every relative file path made absolute, as read from ``base_dir``.

    A plan names its data (``data.source.path``, ``data.test.path``) and its
    base (``model.base``) relative to the plan file's folder.  Plans the tool
    writes elsewhere (a run folder's plan.json, a search's best_plan.json, a
    revised next_plan.json) carry absolute paths, so they run from any folder.
    ``model.base`` keeps the engine's lookup: a hub name as it is, else beside
    the plan when it exists there, else from the current folder.
    """
    base_dir = Path(base_dir)

    def absolute(source):
        if source is None or not hasattr(source, "path") or Path(source.path).is_absolute():
            return source
        return source.model_copy(update={"path": str((base_dir / source.path).resolve())})

    data = plan.data.model_copy(
        update={"source": absolute(plan.data.source), "test": absolute(plan.data.test)}
    )
    model = plan.model
    base = model.base
    if base is not None and not _is_hub_name(base) and not Path(base).is_absolute():
        beside = base_dir / base
        chosen = beside if beside.exists() or not Path(base).exists() else Path(base)
        model = model.model_copy(update={"base": str(chosen.resolve())})
    return plan.model_copy(update={"data": data, "model": model})


def _is_hub_name(spec: str) -> bool:
    """torchvision:NAME or timm:NAME (the engine's hub names), without importing the engine."""
    scheme, sep, rest = spec.partition(":")
    return bool(sep) and scheme in ("torchvision", "timm") and bool(rest)
