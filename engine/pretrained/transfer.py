"""Pretrained bases: find them, read them, and hold a plan to the base's structure.

A base is what ``model.base`` names: an earlier run's directory (its
``model.safetensors`` + ``model.json``), a PyTorch/safetensors state dict of
the torchvision/timm ResNet family, or a hub name such as
``torchvision:resnet18`` (``engine.pretrained.imports``).  A relative path is looked up
in the plan file's folder first, then in the working directory, so
``runs/bases/digits_0to4`` works from the repository root for the plans in
``examples/plans/``.

**The structure contract.**  A transferred backbone keeps the structure it
was trained with: its weights only make sense in that network.  The
recommender sizes filters and layers to the *new* data, which need not be the
base's, so the base's structure has to reach the plan explicitly:
``advisor profile DATA --base BASE`` copies the base's model section into
``profile.pretrained.model``, and the rules ``transfer_backbone_*`` copy its
backbone fields (``vocabulary.BACKBONE_FIELDS``) into the plan.  The engine
does not patch a plan that disagrees: ``check_structure`` raises an
``InputError`` naming the first field that differs (``model.filters: ...``)
and the value the base needs.  Following the base silently would make
``plan.json`` describe a network that never ran, and its explanations would
justify the wrong numbers.  The head, dropout and output size are free: the
head is always new (the lecture's "modify output layers").
"""

from __future__ import annotations

from pathlib import Path

from advisor.contract.errors import InputError
from advisor.contract.inputs import confine, data_root
from advisor.contract.schemas import ModelPlan, Plan
from advisor.contract.vocabulary import BACKBONE_FIELDS, RESNET_DEFAULTS
from engine.outputs.checkpoint import STRUCTURE, WEIGHTS, load_checkpoint


def resolve_base(spec: str, base_dir: str | Path = ".") -> str | Path:
    """Where ``model.base`` points: a hub name as is, else a path (plan folder first, then cwd)."""
    from engine.pretrained.imports import is_hub_name

    if is_hub_name(spec):
        return spec
    path = Path(spec)
    if path.is_absolute():
        return path
    beside_plan = Path(base_dir) / path
    if beside_plan.exists() or not path.exists():
        return beside_plan
    return path


def read_base(
    spec: str, base_dir: str | Path = ".", field: str = "model.base"
) -> tuple[dict, dict, str]:
    """(variables, structure, where) of any base ``model.base`` may name.

    Raises:
        InputError: naming ``field`` when nothing readable is there.
    """
    from engine.pretrained.imports import fetch, import_state_dict, is_state_dict_file

    where = resolve_base(spec, base_dir)
    if not isinstance(where, str):
        confine(where, data_root(), field=field)
    if isinstance(where, str):  # a hub name
        variables, structure = import_state_dict(fetch(where, field=field), field)
        return variables, {**structure, "imported_from": where}, where
    if is_state_dict_file(where):
        variables, structure = import_state_dict(where, field)
        return variables, structure, str(where)
    if where.is_dir() and not (where / WEIGHTS).exists():
        raise InputError(
            f"{field}: {where} holds no {WEIGHTS}; build the base first "
            "(advisor pretrain examples/bases/*.json) or name a .pth/.safetensors state dict"
        )
    variables, structure = load_checkpoint(where, field)
    if "model" not in structure:
        raise InputError(
            f"{field}: {where} has no {STRUCTURE} describing its model; it cannot be used as a base"
        )
    return variables, structure, str(where)


def base_model(structure: dict) -> ModelPlan:
    """The base's model section, validated."""
    return ModelPlan.model_validate(structure["model"])


def check_structure(plan: Plan, structure: dict, where: str) -> None:
    """InputError naming the first plan field where the plan's backbone differs from the base's."""
    base = base_model(structure)
    how = f"keep the base's structure (advisor profile DATA --base {plan.model.base} writes it into the profile)"
    if plan.model.arch != base.arch:
        raise InputError(
            f"model.arch: {plan.model.arch!r}, but the base {where} is a {base.arch!r}; {how}"
        )
    for name in BACKBONE_FIELDS[base.arch]:
        if base.arch == "resnet" and name == "blocks_per_stage":
            continue  # compared as the effective stage_blocks
        mine, theirs = _backbone_value(plan.model, name), _backbone_value(base, name)
        if mine != theirs:
            raise InputError(
                f"model.{name}: {_show(mine)}, but the base {where} was built with {_show(theirs)}; "
                f"set model.{name} to {_show(theirs)} — {how}"
            )
    trained_on = structure.get("input_shape")
    if trained_on:
        _check_input(plan, base.arch, list(trained_on), where)


def _backbone_value(model: ModelPlan, name: str):
    """A backbone field as the network is built: a ResNet's blocks per stage, however written."""
    if model.arch == "resnet" and name == "stage_blocks":
        from engine.nn.resnet_imagenet import stage_blocks

        return stage_blocks(model)
    value = getattr(model, name)
    return RESNET_DEFAULTS.get(name) if value is None and model.arch == "resnet" else value


def _check_input(plan: Plan, arch: str, trained_on: list[int], where: str) -> None:
    """Dense bases need the same input size; convolutional ones the same rank and channels."""
    shape = list(plan.input_shape)
    if arch == "mlp":
        same = shape == trained_on or _size(shape) == _size(trained_on)
        need = f"{trained_on} (or as many values)"
    else:
        same = len(shape) == len(trained_on) and shape[-1] == trained_on[-1]
        need = f"{len(trained_on) - 1}-D inputs with {trained_on[-1]} channel(s)"
    if not same:
        raise InputError(
            f"input_shape: {shape}, but the base {where} was trained on {trained_on}; expected {need} "
            "(resize or convert the data, e.g. data.source.image_size)"
        )


def _size(shape: list[int]) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


def _show(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def load_base(plan: Plan, base_dir: str | Path = ".") -> tuple[dict, dict, str]:
    """The plan's base, checked against the plan's structure: (variables, structure, where)."""
    variables, structure, where = read_base(plan.model.base, base_dir)
    check_structure(plan, structure, where)
    return variables, structure, where
