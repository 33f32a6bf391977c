"""A Profile as the flat facts the recommend rules reason over.

``profile_facts`` reads what the practitioner wrote into a Profile and turns it
into ``{fact_name: value}`` under the names declared in
``advisor.contract.vocabulary.FACTS``: copies of the fields (nested ones under dotted
names such as ``pretrained.similarity_score``) and a few quantities that are
pure arithmetic on them (input size, class imbalance, samples per class).
Judgements about those quantities (is the data small? is the imbalance
strong?) are *not* made here: they are derived facts, and the thresholds that
make them belong to rules in ``rules/*.toml``.

``example_facts`` does the same for a rule's ``example`` table, which is a
profile written with dotted keys (``"pretrained.similarity" = "similar"``).
"""

from __future__ import annotations

import math
from typing import Any

from advisor.contract.errors import InputError
from advisor.contract.io import describe_validation_error
from advisor.contract.plan_paths import nest
from advisor.contract.schemas import Profile
from advisor.contract.vocabulary import BACKBONE_FIELDS, RESNET_DEFAULTS


def profile_facts(profile: Profile) -> dict[str, Any]:
    """The facts a Profile states, flat and under declared names.

    Facts the profile does not state are absent (not ``None``), so a rule that
    tests them simply does not match.

    Example:
        >>> p = Profile(task="binary", modality="tabular", n_train=100,
        ...             input_shape=[4], n_classes=2, class_counts=[90, 10])
        >>> facts = profile_facts(p)
        >>> facts["imbalance_ratio"], facts["minority_fraction"], facts["samples_per_class"]
        (9.0, 0.1, 50.0)
    """
    facts: dict[str, Any] = {
        "task": profile.task,
        "modality": profile.modality,
        "n_train": profile.n_train,
        "input_shape": list(profile.input_shape),
        "input_rank": len(profile.input_shape),
        "input_size": math.prod(profile.input_shape),
        "targets_have_outliers": profile.targets_have_outliers,
        "margin_classifier": profile.margin_classifier,
        "sparse_inputs": profile.sparse_inputs,
        "flip_invariant": profile.flip_invariant,
        "has_pretrained": profile.pretrained is not None,
        "has_data": profile.data is not None,
    }
    optional = {
        "name": profile.name,
        "n_val": profile.n_val,
        "n_classes": profile.n_classes,
        "n_targets": profile.n_targets,
        "label_encoding": profile.label_encoding,
        "gan_objective": profile.gan_objective,
        "gan_reconstruction": profile.gan_reconstruction,
        "metric": profile.metric,
    }
    facts.update({name: value for name, value in optional.items() if value is not None})
    if profile.targets is not None:  # measured by advisor profile
        measured = profile.targets.model_dump(exclude={"judged"})
        facts.update({f"targets.{name}": value for name, value in measured.items()})
    if profile.inputs is not None:
        facts["inputs.zero_fraction"] = profile.inputs.zero_fraction
    if profile.modality == "image" and len(profile.input_shape) == 3:
        height, width, channels = profile.input_shape
        facts["image_side"] = min(height, width)
        facts["image_pixels"] = height * width
        facts["image_channels"] = channels
    if profile.modality == "sequence" and len(profile.input_shape) == 2:
        facts["sequence_steps"] = profile.input_shape[0]
    facts.update(_class_balance(profile))
    facts.update(_nested(profile))
    return facts


def _class_balance(profile: Profile) -> dict[str, Any]:
    """Imbalance ratio, minority share and samples per class, where they can be known."""
    out: dict[str, Any] = {}
    if profile.n_classes is not None:
        out["samples_per_class"] = profile.n_train / profile.n_classes
    if profile.class_counts is not None:
        counts = profile.class_counts
        out["imbalance_ratio"] = max(counts) / min(counts)
        out["minority_fraction"] = min(counts) / sum(counts)
    elif profile.imbalance_ratio is not None:
        out["imbalance_ratio"] = profile.imbalance_ratio
        if profile.task == "binary":
            # two classes in ratio r : 1 -> the minority holds 1 / (r + 1) of the examples
            out["minority_fraction"] = 1.0 / (profile.imbalance_ratio + 1.0)
    return out


def _nested(profile: Profile) -> dict[str, Any]:
    """The pretrained base, budget, data source and LR-finder result, under dotted names."""
    out: dict[str, Any] = {}
    if profile.pretrained is not None:
        base = profile.pretrained
        out["pretrained.base"] = base.base
        if base.source_domain is not None:
            out["pretrained.source_domain"] = base.source_domain
        if isinstance(base.similarity, str):
            out["pretrained.similarity_label"] = base.similarity
        elif base.similarity is not None:
            out["pretrained.similarity_score"] = float(base.similarity)
        if base.model is not None:  # the backbone a plan loading this base must keep
            fields = BACKBONE_FIELDS[base.model.arch]
            backbone = {"arch": base.model.arch, **base.model.model_dump(include=set(fields))}
            if base.model.arch == "resnet":
                backbone.update({k: backbone[k] or v for k, v in RESNET_DEFAULTS.items()})
            out.update({f"pretrained.model.{k}": v for k, v in backbone.items() if v is not None})
        if base.input_shape is not None:
            out["pretrained.input_shape"] = list(base.input_shape)
        if base.n_params is not None:
            out["pretrained.n_params"] = base.n_params
    if profile.budget is not None:
        budget = profile.budget
        out["budget.device"] = budget.device
        for name in ("max_epochs", "max_minutes", "max_trials"):
            value = getattr(budget, name)
            if value is not None:
                out[f"budget.{name}"] = value
    if profile.data is not None:
        out["data"] = profile.data.model_dump(mode="json")
        out["data.kind"] = profile.data.kind
    if profile.lr_find is not None:
        out["lr_find.learning_rate"] = profile.lr_find.learning_rate
    return out


def unflatten(example: dict[str, Any]) -> dict[str, Any]:
    """``{"pretrained.base": "b"}`` -> ``{"pretrained": {"base": "b"}}``; plain keys stay.

    Example:
        >>> unflatten({"task": "binary", "budget.max_epochs": 5})
        {'task': 'binary', 'budget': {'max_epochs': 5}}
    """
    try:
        return nest(example, strict=True)
    except ValueError as err:
        raise InputError(f"example: {err}") from None


def example_facts(example: dict[str, Any]) -> dict[str, Any]:
    """The facts of a rule's ``example``: a complete profile, dotted keys allowed.

    An example must be a valid profile on its own (task, modality, n_train,
    input_shape, and n_classes for classification), so that it reads as the
    smallest profile a user could write on which the rule fires.

    Raises:
        InputError: the example is not a valid profile.
    """
    from pydantic import ValidationError

    try:
        profile = Profile.model_validate(unflatten(example))
    except ValidationError as err:
        raise InputError(f"example: {describe_validation_error(err, Profile)}") from None
    return profile_facts(profile)
