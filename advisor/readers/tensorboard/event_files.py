"""TensorBoard scalars -> History, without TensorFlow (the records are decoded in
``advisor.readers.tensorboard.tfevents``).

A file or a folder of event files (Keras writes ``train/`` and ``validation/``
sub-folders with tags ``epoch_loss``; PyTorch ``Loss/train``; Lightning
``train_loss`` plus an ``epoch`` scalar).  Steps become epochs this way:
1. an ``epoch`` scalar (Lightning) maps each step to its epoch;
2. when every tag is written at about the same steps, each step is one epoch;
3. else the sparsest metric tag (usually the validation one) sets the points,
   and denser tags are averaged over the steps up to each point.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from pathlib import Path

from advisor.contract.schemas import History
from advisor.readers.names import normalise
from advisor.readers.table import Content, HistoryBuilder
from advisor.readers.tensorboard.tfevents import is_events_file, records, scalars

FORMAT = "tensorboard"
_VAL_DIRS = {"validation", "val", "valid", "eval", "evaluation", "test"}
_TRAIN_DIRS = {"train", "training"}
PHASE_DIRS = _VAL_DIRS | _TRAIN_DIRS  # sub-folders that hold one phase of a run


def sniff(content: Content) -> bool:
    """A TFRecord header with a valid checksum."""
    return is_events_file(content.data[:12])


def read(content: Content) -> History:
    """One events file."""
    return read_files([(content.label, content.data, "")], content.path)


def find_event_files(root: Path) -> list[Path]:
    """Event files under a folder, found by content, in name order (= time order)."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                if is_events_file(handle.read(12)):
                    found.append(path)
    return found


def read_folder(root: Path, files: list[Path]) -> History:
    """Several events files; a ``validation``-like folder name marks its tags as validation.

    Below ``root``, a folder named for a phase (Keras' ``train`` / ``validation``) or
    ending in one (PyTorch's ``add_scalars("Loss", {"train": ..., "val": ...})``
    writes ``Loss_train`` / ``Loss_val`` folders) gives its tags that phase.
    """
    entries = []
    for path in files:
        parts = {p.lower() for p in path.relative_to(root).parts[:-1]}
        parts |= {p.rsplit("_", 1)[-1] for p in parts}
        phase = "validation/" if parts & _VAL_DIRS else "train/" if parts & _TRAIN_DIRS else ""
        entries.append((str(path.relative_to(root)), path.read_bytes(), phase))
    return read_files(entries, root)


def read_files(entries: list[tuple[str, bytes, str]], path: Path | None) -> History:
    """(label, bytes, tag prefix) per file -> one History."""
    builder = HistoryBuilder(FORMAT, path)
    points: dict[str, dict[int, float]] = defaultdict(dict)  # raw tag -> step -> value
    for label, data, prefix in entries:
        n_bad = 0
        for offset, payload, problem in records(data):
            if problem is not None:
                builder.skip(f"{label}: byte {offset}: {problem}")
            if payload is None:
                continue
            try:
                found = scalars(payload)
            except ValueError:
                n_bad += 1
                continue
            for scalar in found:
                points[prefix + scalar.tag][scalar.step] = scalar.value
        if n_bad:
            builder.skip(f"{label}: {n_bad} record(s) are not valid Event messages; skipped")
    epoch_tags = [tag for tag in points if tag.rsplit("/", 1)[-1].lower() == "epoch"]
    metric_tags = {tag: vals for tag, vals in points.items() if normalise(tag) is not None}
    if epoch_tags:
        epoch_of = _epochs_from_scalar(points[epoch_tags[0]])
    else:
        metric_tags = _drop_batch_tags(metric_tags, builder)
        epoch_of = _epochs_from_sparsest(metric_tags)
    for tag, values in metric_tags.items():
        by_epoch: dict[int, int] = defaultdict(int)
        for step in values:
            by_epoch[epoch_of(step)] += 1
        per_step = max(by_epoch.values(), default=0) > 1
        for step in sorted(values):
            builder.add(
                epoch_of(step), tag, values[step], where=f"{tag} step {step}", per_step=per_step
            )
    return builder.build()


def _epochs_from_scalar(epoch_points: dict[int, float]):
    """step -> 1-based epoch, from the epoch value logged at the latest step at or before it."""
    steps = sorted(epoch_points)
    values = [int(epoch_points[s]) for s in steps]
    offset = 1 if min(values) == 0 else 0

    def epoch_of(step: int) -> int:
        index = max(0, bisect.bisect_right(steps, step) - 1)
        return values[index] + offset

    return epoch_of


def _drop_batch_tags(tags: dict[str, dict[int, float]], builder: HistoryBuilder) -> dict:
    """Keras logs batch_* tags on a global-step axis next to epoch_* tags on an epoch axis."""
    names = {tag: normalise(tag) for tag in tags}
    if not any(n is not None and n.granularity == "epoch" for n in names.values()):
        return tags
    kept = {}
    for tag, values in tags.items():
        if names[tag] is not None and names[tag].granularity == "step":
            builder.skip(
                f"{tag}: logged per batch on another step axis than the epoch tags; left out"
            )
        else:
            kept[tag] = values
    return kept


def _epochs_from_sparsest(tags: dict[str, dict[int, float]]):
    """step -> 1-based point index, the points being the steps of the sparsest tag."""
    if not tags:
        return lambda step: 1
    # A tag written once (a final test score) would fold the whole run into one point.
    candidates = [values for values in tags.values() if len(values) >= 2] or list(tags.values())
    sparsest = min(candidates, key=len)
    if max(len(v) for v in candidates) <= 1.5 * len(sparsest):
        # One cadence for all tags: each step is a point
        # (a lost record loses a value, not an epoch).
        boundaries = sorted(set().union(*candidates))
    else:
        boundaries = sorted(sparsest)

    def epoch_of(step: int) -> int:
        return bisect.bisect_left(boundaries, step) + 1

    return epoch_of
