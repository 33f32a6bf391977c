"""Pretrained bases on this machine: ``advisor pretrain`` builds them, ``advisor import-base`` converts them.

A base is an ordinary run of a plan with no base, whose ``output_dir`` names
where its checkpoint goes (``examples/bases/digits_0to4.json`` ->
``runs/bases/digits_0to4``); the plans of the transfer examples then name that
directory as ``model.base``.  ``pretrain`` runs every base plan it is given
(default: the ``examples/bases`` folder), skipping a base whose checkpoint was
built from the same plan, so one command gets a fresh clone ready to run every
transfer example offline.  ``import_base`` writes torchvision/timm ResNet
weights (a local file, or a hub name fetched once) as a checkpoint directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from advisor.contract.errors import InputError
from advisor.contract.loading import load_plan
from advisor.contract.schemas import Plan

DEFAULT_BASES = Path("examples/bases")
# Fields a run resolves (where it ran, on how many devices, read how); a checkpoint built from a
# plan differing only here is current.
_RESOLVED = ("output_dir", "device", "scale", "explanations", "derived_facts")


@dataclass(frozen=True)
class Built:
    """One base: where it is, whether this call trained it, its validation metrics."""

    plan: str
    checkpoint: str
    trained: bool
    metrics: dict[str, float]


def base_plans(paths: list[Path]) -> list[Path]:
    """The plan files named, folders expanded to their ``*.json`` files."""
    files: list[Path] = []
    for path in paths or [DEFAULT_BASES]:
        if path.is_dir():
            files += sorted(path.glob("*.json"))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(
                f"PLANS: {path} does not exist; expected base plan files or a folder of them"
            )
    if not files:
        raise InputError(
            f"PLANS: no *.json plans in {', '.join(map(str, paths or [DEFAULT_BASES]))}"
        )
    return files


def is_current(plan: Plan, out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a checkpoint trained from this very plan."""
    recorded = out_dir / "plan.json"
    if not (out_dir / "model.safetensors").exists() or not recorded.exists():
        return False
    try:
        earlier = load_plan(recorded)
    except InputError:
        return False
    return earlier.model_dump(exclude=set(_RESOLVED)) == plan.model_dump(exclude=set(_RESOLVED))


def pretrain(paths: list[Path], force: bool = False) -> list[Built]:
    """Build every base plan in ``paths`` that is not built yet (or all, with ``force``).

    Raises:
        InputError: a plan has no ``output_dir``, names a base of its own, or cannot run.
    """
    from advisor.workflows.running import run

    built = []
    for file in base_plans(paths):
        plan = load_plan(file)
        if plan.output_dir is None:
            raise InputError(
                f"{file}: output_dir: a base plan must say where its checkpoint goes, e.g. runs/bases/NAME"
            )
        out_dir = Path(plan.output_dir)
        if not force and is_current(plan, out_dir):
            metrics = (
                json.loads((out_dir / "metrics.json").read_text())
                if (out_dir / "metrics.json").exists()
                else {}
            )
            built.append(Built(str(file), str(out_dir), False, _val(metrics)))
            continue
        result = run(file, out_dir=out_dir, overwrite=True)  # a stale or forced base is rebuilt
        built.append(Built(str(file), result.run_dir, True, dict(result.metrics)))
    return built


def _val(metrics: dict) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k.startswith("val_") and isinstance(v, float)}
