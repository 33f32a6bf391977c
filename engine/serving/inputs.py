"""New data for a trained run, read the way the run read its training data.

``read_labelled(data, run)`` gives raw inputs and targets for ``advisor
evaluate``: DATA names a source as ``advisor profile`` does (``builtin:NAME``,
a .npz, a .csv, an image folder) and the run's ``preprocessing.json`` fills in
the rest (the CSV's target and feature columns, the image size and colours,
the class subset of a bundled set), so the rows are the kind the model was
trained on.  ``read_unlabelled(input, run)`` gives an ``Inputs``: the row ids
and the raw inputs batch by batch, for ``advisor predict`` (a .npy is memory
mapped and images are read one batch at a time, so memory stays one batch wide).
Every mismatch is an ``InputError`` naming the file and what the run expected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from advisor.contract.errors import InputError
from advisor.contract.schemas import (
    BuiltinData,
    CsvData,
    ImageFolderData,
    NpzData,
    Plan,
    Preprocessing,
)
from engine.datasets import sources, tables
from engine.datasets.data import align_classes, check_targets
from engine.datasets.tables import TABLE_SUFFIXES


def source_like_run(data: str, pre: Preprocessing):
    """The data source DATA names, completed with the run's columns, image size and classes."""
    if data.startswith("builtin:"):
        name = data.removeprefix("builtin:")
        chosen = pre.builtin or {}
        same = chosen.get("name") == name
        try:
            return BuiltinData(
                name=name,
                image_size=pre.image_size,
                classes=chosen.get("classes") if same else None,
                positive_class=chosen.get("positive_class") if same else None,
            )
        except ValueError:
            raise InputError(f"DATA: {data!r} is not a bundled dataset") from None
    path = Path(data)
    if not path.exists():
        raise InputError(f"DATA: {data} does not exist")
    if path.suffix == ".npz":
        return NpzData(path=data, x_key=pre.x_key or "x", y_key=pre.y_key or "y")
    if path.suffix.lower() in TABLE_SUFFIXES:
        if pre.target is None:
            raise InputError(
                f"DATA: {data} is a table, but the run trained on {pre.source_kind} data"
            )
        _check_columns(path, [*(pre.features or []), pre.target])
        return CsvData(
            path=data, target=pre.target, features=pre.features, categories=pre.categories
        )
    if path.is_dir():
        if pre.image_size is None:
            raise InputError(
                f"DATA: {data} is an image folder, but the run trained on {pre.source_kind} data"
            )
        return ImageFolderData(
            path=data, image_size=pre.image_size, color_mode=pre.color_mode or "rgb"
        )
    raise InputError(
        f"DATA: {data} is not a data source; expected builtin:NAME, .npz, .csv or an image folder"
    )


def _header(path: Path) -> list[str]:
    return tables.header(path)


def _check_columns(path: Path, wanted: list[str]) -> None:
    header = _header(path)
    missing = [c for c in wanted if c not in header]
    if missing:
        raise InputError(
            f"{path}: column {missing[0]!r} is missing; the run's model reads the columns "
            f"{', '.join(wanted)} (preprocessing.json)"
        )


def read_labelled(data: str, plan: Plan, pre: Preprocessing) -> tuple[np.ndarray, np.ndarray]:
    """Raw inputs and targets (the task's raw form, class ids in the run's numbering) from DATA."""
    source = source_like_run(data, pre)
    raw = sources.read_source(source, plan, Path("."))
    raw = align_classes(raw, pre.class_names, f"DATA {data}")
    if len(raw.x) == 0:
        raise InputError(f"DATA: {data} holds no examples")
    try:
        y = check_targets(raw.y, plan)
    except InputError as err:
        raise InputError(f"DATA {data}: {err}") from None
    return raw.x, y


@dataclass
class Inputs:
    """Unlabelled rows: how many, their ids (row numbers or file names), and a batch reader."""

    n: int
    ids: Sequence  # row numbers (a range) or file names
    batches: Callable[[int], Iterator[np.ndarray]]  # batch size -> raw inputs, batch by batch


def read_unlabelled(path_or_name: str, plan: Plan, pre: Preprocessing) -> Inputs:
    """The rows of INPUT: .npy, .npz, .csv (the run's features), image folder or builtin:NAME."""
    if path_or_name.startswith("builtin:"):
        raw = sources.read_source(source_like_run(path_or_name, pre), plan, Path("."))
        return _in_memory(raw.x)
    path = Path(path_or_name)
    if not path.exists():
        raise InputError(f"INPUT: {path} does not exist")
    if path.suffix == ".npy":
        try:
            x = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise InputError(f"INPUT: {path} is not a readable .npy file ({err})") from None
        return _in_memory(x)
    if path.suffix == ".npz":
        key = pre.x_key or "x"
        with np.load(path, allow_pickle=False) as arrays:
            if key not in arrays:
                raise InputError(
                    f"INPUT: {path} has no array {key!r}; it has {', '.join(sorted(arrays.files))}"
                )
            return _in_memory(arrays[key])
    if path.suffix.lower() in TABLE_SUFFIXES:
        if pre.features is None:
            raise InputError(
                f"INPUT: {path} is a table, but the run trained on {pre.source_kind} data"
            )
        _check_columns(path, pre.features)
        return _table_rows(path, pre.features, pre.categories or {})
    if path.is_dir():
        if pre.image_size is None:
            raise InputError(
                f"INPUT: {path} is an image folder, but the run trained on {pre.source_kind} data"
            )
        files = sorted(f for f in path.rglob("*") if f.suffix.lower() in sources.IMAGE_SUFFIXES)
        size, mode = tuple(pre.image_size), pre.color_mode or "rgb"

        def batches(batch: int) -> Iterator[np.ndarray]:
            for start in range(0, len(files), batch):
                chunk = files[start : start + batch]
                yield np.stack([sources.read_image(f, size, mode) for f in chunk])

        return Inputs(len(files), [str(f.relative_to(path)) for f in files], batches)
    raise InputError(
        f"INPUT: {path} is not readable; expected .npy, .npz, .csv, an image folder or builtin:NAME"
    )


def _in_memory(x: np.ndarray) -> Inputs:
    """Rows of an array (a memory map stays one: each batch is read when it is asked for)."""

    def batches(batch: int) -> Iterator[np.ndarray]:
        for start in range(0, len(x), batch):
            yield np.asarray(x[start : start + batch])

    return Inputs(len(x), range(len(x)), batches)


def _table_rows(path: Path, features: list[str], categories: dict) -> Inputs:
    """A table read in chunks (``engine.datasets.tables``): one pass counts the rows, then batch by batch."""
    n = sum(len(frame) for frame in tables.iter_frames(path, features))

    def batches(batch: int) -> Iterator[np.ndarray]:
        start = 0
        for frame in tables.iter_frames(path, features, rows=batch):
            try:
                yield tables.encode_features(frame, features, categories, f"INPUT {path}")
            except InputError:
                raise
            except (ValueError, TypeError):
                raise InputError(
                    f"INPUT: {path} has a feature value that is not a number in rows "
                    f"{start + 1}-{start + len(frame)}"
                ) from None
            start += len(frame)

    return Inputs(n, range(n), batches)
