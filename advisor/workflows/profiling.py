"""``advisor profile DATA``: a Profile written from the data itself, not from what a user remembers.

``profile_data(source, ...)`` reads a data source the way a plan's run will
(``engine.datasets.sources``: a bundled dataset, an ``.npz``, a CSV table, an image
folder), splits it with the same seed and validation share, and records what
the rules need: task (inferred from the targets unless given), modality, input
shape, training and validation counts, classes and their counts, label
encoding.  Given a base, it also records the base's structure (so the plan
keeps the backbone the weights belong to, see ``engine.pretrained.transfer``) and a
measured similarity of the data to the base's domain (``engine.pretrained.similarity``).

Only ``--base`` (and resizing images) imports jax; a plain profile reads numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import numpy as np
from pydantic import ValidationError

from advisor.contract.errors import InputError
from advisor.contract.io import describe_validation_error
from advisor.contract.schemas import (
    BuiltinData,
    BuiltinDatasetName,
    CsvData,
    DataPlan,
    DataSource,
    ImageFolderData,
    InputEvidence,
    NpzData,
    Pretrained,
    Profile,
    SimilarityEvidence,
    TargetEvidence,
)

# Integer targets with at most this many distinct values are class ids, not quantities.
MAX_CLASSES = 100
_MODALITY = {1: "tabular", 2: "sequence", 3: "image"}


@dataclass(frozen=True)
class _ReadContext:
    """What ``engine.datasets.sources.read_source`` reads off a plan, before any plan exists."""

    task: str
    data: DataPlan
    class_mode: str | None = None


def parse_source(
    data: str,
    *,
    target: str | None = None,
    classes: list[int] | None = None,
    subsample: int | None = None,
    n_samples: int | None = None,
    image_size: tuple[int, int] | None = None,
    color_mode: str = "rgb",
) -> DataSource:
    """The source a command-line DATA names: ``builtin:NAME``, a .npz, a .csv or an image folder."""
    if data.startswith("builtin:"):
        name = data.removeprefix("builtin:")
        if name not in get_args(BuiltinDatasetName):
            raise InputError(
                f"DATA: {data!r} is not a bundled dataset; expected builtin: and one of "
                f"{', '.join(get_args(BuiltinDatasetName))}"
            )
        return BuiltinData(
            name=name,
            classes=classes,
            subsample=subsample,
            n_samples=n_samples,
            image_size=image_size,
        )
    builtin_only = {"--classes": classes, "--subsample": subsample, "--n-samples": n_samples}
    given = [flag for flag, value in builtin_only.items() if value is not None]
    if given:
        raise InputError(
            f"{given[0]}: applies to builtin: datasets only; select the rows of {data} beforehand"
        )
    path = Path(data)
    if path.suffix == ".npz":
        return NpzData(path=data)
    if path.suffix == ".csv":
        if target is None:
            raise InputError(
                f"--target: required for a CSV table ({data}); name the column to predict"
            )
        return CsvData(path=data, target=target)
    if path.is_dir():
        if image_size is None:
            raise InputError(
                f"--image-size: required for an image folder ({data}); e.g. --image-size 64x64"
            )
        return ImageFolderData(path=data, image_size=image_size, color_mode=color_mode)
    raise InputError(
        f"DATA: {data} is not a data source; "
        "expected builtin:NAME, a .npz file, a .csv file or an image folder"
    )


def infer_task(y: np.ndarray, source: DataSource) -> str:
    """The task the targets describe: boxes, one-hot or soft rows, 0/1 rows, ids or quantities."""
    if isinstance(source, BuiltinData) and source.name in ("shapes_detection", "digits_detection"):
        return "detection"
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.number):
        return "binary" if len(np.unique(y)) == 2 else "multiclass"
    if y.ndim == 2 and y.shape[1] > 1:
        binary_entries = np.isin(y, (0, 1)).all()
        if np.all(y >= 0) and np.allclose(y.sum(axis=1), 1.0):
            return "multiclass"  # one-hot or soft rows
        return "multilabel" if binary_entries else "regression"
    flat = y.reshape(-1)
    integral = np.all(np.isfinite(flat)) and np.all(np.mod(flat, 1) == 0)
    n_unique = len(np.unique(flat))
    if integral and n_unique <= MAX_CLASSES and flat.min() >= 0:
        return "binary" if n_unique == 2 else "multiclass"
    return "regression"


def _label_encoding(y: np.ndarray, task: str) -> str | None:
    if task == "detection":
        return "box_sets" if y.ndim == 3 else "boxes"
    if task in ("binary", "multiclass"):
        if y.ndim == 2 and y.shape[1] > 1:
            return "one_hot" if np.isin(y, (0, 1)).all() else "soft"
        return "integer"
    return None


def _class_ids(y: np.ndarray, task: str) -> np.ndarray | None:
    if task in ("binary", "multiclass"):
        return (np.argmax(y, axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)).astype(
            np.int64
        )
    if task == "detection" and y.ndim == 3:  # several objects: the classes of the real rows
        return y[..., 4][y[..., 5] > 0.5].astype(np.int64)
    if task == "detection":
        return y[:, 4].astype(np.int64)
    return None


def profile_data(
    source: DataSource,
    *,
    task: str | None = None,
    base: str | None = None,
    name: str | None = None,
    val_fraction: float = 0.2,
    split_seed: int = 0,
    base_dir: str | Path = ".",
) -> Profile:
    """A Profile of ``source``, with a measured similarity when ``base`` names a pretrained base.

    The split is the one a plan with ``data.val_fraction`` / ``data.split_seed``
    makes, so ``n_train`` is the number of examples the plan trains on.

    Raises:
        InputError: the data cannot be read, or the base does not fit it.
    """
    from engine.datasets.data import split_indices, subsample
    from engine.datasets.sources import read_source

    data_plan = DataPlan(source=source, val_fraction=val_fraction, split_seed=split_seed)
    if isinstance(source, CsvData) and task is None:
        task = _csv_task(source, data_plan, Path(base_dir))
    raw = read_source(source, _ReadContext(task or "multiclass", data_plan), Path(base_dir))
    targets = measure_targets(raw.y)
    if task is None:
        task = "regression" if "targets.count" in targets.judged else infer_task(raw.y, source)
    if task in ("binary", "multiclass") and not np.issubdtype(np.asarray(raw.y).dtype, np.number):
        raise InputError(
            f"DATA: the targets of {source.kind} data must be numbers; encode the classes as 0..k-1"
        )
    y = np.asarray(raw.y)
    ids = _class_ids(y, task)
    split_on = ids if ids is not None and task != "detection" else y
    train_idx, val_idx = split_indices(split_on, task, val_fraction, split_seed)
    if raw.subsample is not None:
        train_idx = subsample(train_idx, split_on, task, raw.subsample, split_seed)
    inputs = measure_inputs(raw.x, _modality(raw.x))
    fields = {
        "name": name,
        "task": task,
        "modality": _modality(raw.x),
        "n_train": len(train_idx),
        "n_val": len(val_idx),
        "input_shape": list(raw.x.shape[1:]),
        "label_encoding": _label_encoding(y, task),
        "data": source,
        "description": f"written by advisor profile from {describe_source(source)}",
        "targets": targets if targets.n_distinct else None,
        "targets_have_outliers": task == "regression" and "targets.outliers" in targets.judged,
        "inputs": inputs,
        "sparse_inputs": "inputs.sparse" in inputs.judged,
    }
    if ids is not None:
        if task == "binary":
            n_classes = 2
        elif (
            y.ndim == 2 and task == "multiclass" and y.shape[1] > 1
        ):  # one-hot or soft rows: a column each
            n_classes = int(y.shape[1])
        else:
            n_classes = int(ids.max()) + 1
        counts = np.bincount(ids[train_idx], minlength=n_classes)
        fields["n_classes"] = n_classes
        if counts.min() > 0:
            fields["class_counts"] = counts.tolist()
    elif task == "regression" and y.ndim == 2 and y.shape[1] > 1:
        fields["n_targets"] = int(y.shape[1])
    elif task == "multilabel":
        fields["n_classes"] = int(y.shape[1])
    if base is not None:
        targets = (ids if ids is not None else y.astype(np.float32))[train_idx]
        fields["pretrained"] = measure_base(base, raw.x[train_idx], targets, task, base_dir)
    try:
        return Profile.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as err:
        raise InputError(
            "DATA: the data does not make a valid profile: "
            + describe_validation_error(err, Profile)
        ) from None


def measure_targets(y) -> TargetEvidence:
    """The numbers behind the task and the outlier flag, and what the target rules make of them.

    Only 1-D numeric targets are measured (class rows, boxes and text labels
    are not quantities); for others ``n_distinct`` is 0 and nothing is judged.
    """
    y = np.asarray(y)
    flat = y.reshape(len(y), -1)
    if flat.shape[1] != 1 or not np.issubdtype(y.dtype, np.number) or len(y) == 0:
        return TargetEvidence.model_construct(
            integral=False, n_distinct=0, span=0.0, min_per_value=1, max_robust_z=0.0, judged={}
        )
    values = flat[:, 0].astype(np.float64)
    _, counts = np.unique(values, return_counts=True)
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    # 0.6745 = the normal quantile at 0.75: it makes the MAD comparable with a standard deviation
    robust_z = float(np.max(0.6745 * np.abs(values - median) / mad)) if mad > 0 else 0.0
    measured = {
        "integral": bool(np.all(np.mod(values, 1) == 0)),
        "n_distinct": len(counts),
        "span": float(values.max() - values.min()),
        "min_per_value": int(counts.min()),
        "max_robust_z": round(robust_z, 3),
    }
    return TargetEvidence(
        **measured, judged=_judge({f"targets.{k}": v for k, v in measured.items()})
    )


def measure_inputs(x: np.ndarray, modality: str) -> InputEvidence:
    """The share of zeros behind ``sparse_inputs``, and what the input rules make of it."""
    zero_fraction = round(float(np.mean(np.asarray(x) == 0)), 4) if np.size(x) else 0.0
    facts = {"modality": modality, "inputs.zero_fraction": zero_fraction}
    return InputEvidence(zero_fraction=zero_fraction, judged=_judge(facts))


def _judge(facts: dict) -> dict[str, str]:
    """Facts the rules of rules/12_profile_evidence.toml derive as true: fact -> reason (rule)."""
    from advisor.expert.inference import infer
    from advisor.expert.rules import load_rules

    measured = ("targets.", "inputs.")
    rules = [r for r in load_rules() if r.infer and all(k.startswith(measured) for k in r.infer)]
    found = infer(facts, rules).derived_facts()
    return {k: f"{d.rule.reason} ({d.rule.id})" for k, d in found.items() if d.value is True}


def _csv_task(source: CsvData, data_plan: DataPlan, base_dir: Path) -> str:
    """A CSV target column: classes when it is text or few integers, else regression."""
    from engine.datasets.sources import read_source

    try:
        raw = read_source(source, _ReadContext("regression", data_plan), base_dir)
    except InputError:  # a non-numeric target column: class names, read as ids in name order
        raw = read_source(source, _ReadContext("multiclass", data_plan), base_dir)
    if "targets.count" in measure_targets(raw.y).judged:
        return "regression"
    return infer_task(raw.y, source)


def _modality(x: np.ndarray) -> str:
    rank = x.ndim - 1
    if rank not in _MODALITY:
        raise InputError(
            f"DATA: examples of shape {list(x.shape[1:])}; "
            "expected a vector, a sequence or an image"
        )
    return _MODALITY[rank]


def describe_source(source: DataSource) -> str:
    """A short human description of a data source."""
    if isinstance(source, BuiltinData):
        extras = [
            f"classes {source.classes}" if source.classes else "",
            f"subsample {source.subsample}" if source.subsample else "",
            f"image size {list(source.image_size)}" if source.image_size else "",
        ]
        shown = ", ".join(e for e in extras if e)
        return f"builtin:{source.name}" + (f" ({shown})" if shown else "")
    return f"{source.kind} {source.path}"


def measure_base(
    base: str, x_train: np.ndarray, targets: np.ndarray, task: str, base_dir
) -> Pretrained:
    """The ``pretrained`` section: the base's structure, domain and measured similarity to the data.

    ``x_train`` is scaled as the base's own plan scaled its inputs, fitted on ``x_train``.
    """
    from engine.datasets.data import scale_splits
    from engine.nn.models import build_model
    from engine.pretrained.similarity import measure_similarity
    from engine.pretrained.transfer import base_model, read_base

    variables, structure, where = read_base(base, base_dir, field="--base")
    model = base_model(structure)
    trained_on = list(structure.get("input_shape") or x_train.shape[1:])
    _check_fits(model.arch, trained_on, list(x_train.shape[1:]), where)
    mode = structure.get("scaling", {}).get("normalize", "standardize")
    modality = _modality(x_train)
    x_train = x_train.astype(np.float32)
    scaled, _, _ = scale_splits(
        x_train, x_train[:1], "standardize" if mode == "imagenet" else mode, modality
    )
    network = build_model(model, list(x_train.shape[1:]), "multiclass")
    measured = measure_similarity(network, variables, scaled, targets, task)
    return Pretrained(
        base=base,
        source_domain=_source_domain(structure, where),
        similarity=round(measured.score, 3),
        model=model,
        input_shape=trained_on,
        n_params=_count_weights(variables.get("params", {})) or None,
        measured=SimilarityEvidence(
            **{k: v for k, v in measured.as_dict().items() if k != "score"}
        ),
    )


def _count_weights(tree) -> int:
    """Number of values in a nested dict of arrays (a checkpoint's ``params``)."""
    if isinstance(tree, dict):
        return sum(_count_weights(v) for v in tree.values())
    return int(np.size(tree))


def _check_fits(arch: str, trained_on: list[int], shape: list[int], where: str) -> None:
    fits = (
        shape == trained_on
        if arch == "mlp"
        else (len(shape) == len(trained_on) and shape[-1] == trained_on[-1])
    )
    if not fits:
        raise InputError(
            f"--base: {where} was trained on inputs of shape {trained_on}; the data's are {shape} "
            "(resize images with --image-size, or pick a base for this kind of input)"
        )


def _source_domain(structure: dict, where: str) -> str:
    """What the base learned from: the run's plan name and data, or the import it came from."""
    if structure.get("imported_from"):
        return f"ImageNet-1k ({structure['imported_from']})"
    plan_file = Path(where) / "plan.json"
    if plan_file.exists():
        from advisor.contract.io import load_model
        from advisor.contract.schemas import Plan

        plan = load_model(Plan, plan_file)
        if plan.data.source is not None:
            return f"{plan.name or plan.task}: {describe_source(plan.data.source)}"
    return str(where)


def summary(profile: Profile) -> str:
    """A few lines: the task, the counts, and the measured similarity with its evidence."""
    lines = [
        f"{profile.task}, {profile.modality} {profile.input_shape}: {profile.n_train} training / "
        f"{profile.n_val} validation examples"
        + (f", {profile.n_classes} classes" if profile.n_classes else ""),
    ]
    if profile.class_counts:
        lines.append(f"class counts (train): {profile.class_counts}")
    if profile.targets is not None:
        t = profile.targets
        lines.append(
            f"targets: {t.n_distinct} distinct values over a span of {t.span:g}"
            f"{' (whole numbers)' if t.integral else ''}, rarest value seen {t.min_per_value}x, "
            f"largest robust z {t.max_robust_z:g}"
        )
        lines += [f"  {fact}: {reason}" for fact, reason in t.judged.items()]
    if profile.inputs is not None:
        lines.append(f"inputs: {profile.inputs.zero_fraction:.1%} of the values are 0")
        lines += [f"  {fact}: {reason}" for fact, reason in profile.inputs.judged.items()]
    if profile.pretrained is not None and profile.pretrained.measured is not None:
        p, m = profile.pretrained, profile.pretrained.measured
        side = "similar" if p.similarity >= 0.5 else "different"
        evidence = [
            f"closeness {m.closeness:.3f} (shift {m.shift:.3f})" if m.closeness is not None else "",
            f"probe accuracy {m.probe_accuracy:.3f} vs chance {m.chance:.3f}"
            if m.probe_accuracy is not None
            else "",
        ]
        lines.append(
            f"similarity to {p.base}: {p.similarity:.3f} ({side}); "
            + "; ".join(e for e in evidence if e)
        )
    return "\n".join(lines)
