"""Read a training history in whatever format the user has -> ``schemas.History``.

``load_history(path)`` detects the format from the content, never the file
name: TensorBoard records by their checksummed header, JSON by its keys (this
project's ``history.json``, Hugging Face ``trainer_state.json``, Keras
``history.history`` or its Python repr, Jupyter notebooks, JSON Lines logs such
as Detectron2's ``metrics.json``), CSV by its header
(Lightning's has a ``step`` column or several rows per epoch, a pandas export an
index column or script-style names such as ``train_loss``, TensorBoard scalars
exported in long form ``tag``, ``step`` and ``value`` columns, Keras' CSVLogger
none of these), fastai's ``epoch train_loss valid_loss`` table, and plain-text logs by
their epoch (or step) markers followed by ``name: value``, ``name=value`` or
``| name value |`` pairs.  One module per format; each has ``FORMAT``,
``sniff(content)`` and ``read(content)``.

A folder or notebook may hold several runs: ``load_histories`` gives one History
per run (``source.run`` names it), never a merge; ``load_history`` refuses such
a folder with the list of its runs.  What a reader derived rather than read
(summed loss heads, per-step means, a partial last epoch) is in ``source.notes``;
what it left out, and why, in ``source.skipped``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from advisor.contract.errors import InputError
from advisor.contract.inputs import checked_folder, read_bytes
from advisor.contract.schemas import History
from advisor.readers import (
    fastai_table,
    hf,
    ipynb,
    json_lines,
    keras_csv,
    keras_json,
    lightning,
    native,
    pandas_csv,
    text_log,
)
from advisor.readers.table import Content
from advisor.readers.tensorboard import event_files, scalars_csv

# Detection order: the most specific signatures first.
READERS = (
    native,
    hf,
    ipynb,
    keras_json,
    json_lines,
    event_files,
    scalars_csv,
    lightning,
    pandas_csv,
    keras_csv,
    fastai_table,
    text_log,
)
FORMATS = tuple(reader.FORMAT for reader in READERS)
_MAX_BYTES = 512 * 1024 * 1024
_MAX_FOLDER_FILE = 64 * 1024 * 1024  # larger files in a run folder are checkpoints


def load_history(source: History | dict[str, Any] | str | Path) -> History:
    """A History from a History, a dict (native or Keras-style) or a file or folder path.

    Args:
        source: a History (returned as is); a dict holding a native History or a
            Keras ``history.history`` table; or a path to a history file, or to a
            folder holding TensorBoard event files or one history file.

    Raises:
        InputError: one line naming the file and what is wrong: missing,
            unreadable, of no known format, or without any usable series.

    Example:
        >>> h = load_history({"loss": [0.9, 0.5], "val_loss": [1.0, 0.7]})
        >>> h.source.format, h.epochs, h.series["val_loss"]
        ('keras_json', [1, 2], [1.0, 0.7])
    """
    if isinstance(source, History):
        return source
    if isinstance(source, dict):
        import json

        try:
            content = Content(None, json.dumps(source).encode())
        except (TypeError, ValueError, RecursionError) as err:
            raise InputError(
                f"history: the dict cannot be read ({type(err).__name__}); "
                "expected series names mapping to lists of numbers"
            ) from None
        return _read(content)
    if not isinstance(source, (str, Path)):
        raise InputError(
            f"history: got a {type(source).__name__}; "
            "expected a History, a dict or a path to a history file"
        )
    path = Path(source)
    if path.is_dir():
        return _read_folder(checked_folder(path, what="history folder"))
    return _read(_content(path))


def _content(path: Path) -> Content:
    """The bytes of a history file; InputError when missing, not a regular file,
    unreadable or too large (``advisor.contract.inputs``)."""
    if not isinstance(path, (str, Path)):
        raise InputError(f"history: got a {type(path).__name__}; expected a path to a history file")
    path = Path(path)
    return Content(path, read_bytes(path, what="training history", max_bytes=_MAX_BYTES))


# What a reader raises on a file of the right shape but the wrong content: a field of
# the wrong type (a list where an object was expected), a number too long for int(),
# nesting past the recursion limit, a CSV field over csv's limit.  Readers parse
# untrusted files; at this boundary each of these is the file's fault, said in one line.
_PARSER_ERRORS = (
    RecursionError,
    MemoryError,
    OverflowError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    csv.Error,
)


def detect(content: Content):
    """The reader module whose signature the content has, or None."""
    try:
        return next((reader for reader in READERS if reader.sniff(content)), None)
    except _PARSER_ERRORS as err:
        raise InputError(
            f"{content.label}: cannot be parsed ({_why(err)}); expected a training history"
        ) from None


def _read(content: Content) -> History:
    reader = _reader(content)
    return _parse(reader.read, content, format=reader.FORMAT)


def _parse(read, content: Content, *, format: str):
    """``read(content)``, with a parser's own failure (a number too long for ``int``,
    nesting past the recursion limit, a malformed CSV field, a field of the wrong
    type) as one line naming the file."""
    try:
        return read(content)
    except _PARSER_ERRORS as err:
        raise InputError(
            f"{content.label}: looks like {format} but cannot be parsed "
            f"({_why(err)}); expected a well-formed {format} history"
        ) from None


def _why(err: Exception) -> str:
    if isinstance(err, csv.Error):
        return "a CSV field over 128 KiB or malformed quoting"
    if isinstance(err, RecursionError):
        return "nested too deeply"
    if isinstance(err, (TypeError, AttributeError, KeyError, IndexError)):
        return "a field of the wrong type or shape"
    return type(err).__name__


def _reader(content: Content):
    """The reader for the content; InputError when empty or of no known format."""
    if not content.data.strip():
        raise InputError(f"{content.label}: is empty; expected a training history")
    reader = detect(content)
    if reader is None:
        raise InputError(
            f"{content.label}: not a training history this reader knows; expected "
            "Keras history JSON, CSVLogger CSV or console log, Lightning metrics.csv, Hugging "
            "Face trainer_state.json, TensorBoard events, a pandas CSV export, JSON Lines, a "
            "Jupyter notebook with training output, advisor history.json or an "
            "'Epoch N ... loss: x' log"
        )
    return reader


def load_histories(source: str | Path) -> dict[str, History]:
    """Every training run a file or folder holds: run name -> History, never merged.

    A folder holding several runs (``lightning_logs/version_0``, ``version_1`` ...,
    or several TensorBoard run folders) gives one History per run, named by its
    folder relative to ``source`` (``source.run``).  A notebook with several
    training runs gives one per run.  Anything else gives one History under its
    file or folder name.

    Raises:
        InputError: one line naming the path and what is wrong.
    """
    path = Path(source)
    if path.is_dir():
        runs = _find_runs(checked_folder(path, what="history folder"))
        if not runs:
            raise InputError(
                f"{path}: no training history in this folder; "
                "expected a history file or event files"
            )
        if len(runs) == 1:
            return {name: _read_run(path, run) for name, run in runs.items()}
        return {name: _labelled(_read_run(path, run), name) for name, run in runs.items()}
    content = _content(path)
    reader = _reader(content)
    read_all = getattr(reader, "read_all", None)
    if read_all is not None:
        return _parse(read_all, content, format=reader.FORMAT)
    return {path.name: _parse(reader.read, content, format=reader.FORMAT)}


class _Run:
    """One run folder: its TensorBoard event files and the history files directly in it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.events: list[Path] = []
        self.files: list[tuple[int, str, Content, Any]] = []


def find_runs(root: Path) -> dict[str, _Run]:
    """The run folders under ``root``, by name (the folder relative to root; "." for root).

    A run folder directly holds a history file or event files (several history files
    side by side are a run each, named by file); Keras' ``train`` /
    ``validation`` event sub-folders belong to the run folder above them, and so do
    the sub-folders PyTorch's ``add_scalars`` writes beside the run's own event file.
    """
    runs: dict[Path, _Run] = {}
    found = event_files.find_event_files(root)
    event_folders = {path.parent for path in found}
    for events_file in found:
        folder = events_file.parent
        while folder != root and (
            folder.name.lower() in event_files.PHASE_DIRS or folder.parent in event_folders
        ):
            folder = folder.parent
        runs.setdefault(folder, _Run(folder)).events.append(events_file)
    event_set = {f for run in runs.values() for f in run.events}
    for path in sorted(root.rglob("*")):
        if path in event_set or not path.is_file() or path.stat().st_size > _MAX_FOLDER_FILE:
            continue
        try:
            with path.open("rb") as handle:
                if b"\x00" in handle.read(4096):
                    continue  # binary: a checkpoint, an image; event files were found above
            content = Content(path, path.read_bytes())
        except OSError:
            continue
        reader = detect(content) if content.data.strip() else None
        if reader is not None:
            run = runs.setdefault(path.parent, _Run(path.parent))
            run.files.append((READERS.index(reader), path.name, content, reader))
    named = {}
    for folder in sorted(runs):
        name = folder.relative_to(root).as_posix()
        run = runs[folder]
        if run.events or len(run.files) <= 1:
            named[name] = run
            continue
        for item in sorted(run.files, key=lambda c: c[1]):  # several history files: one run each
            single = _Run(folder)
            single.files.append(item)
            named[item[1] if name == "." else f"{name}/{item[1]}"] = single
    return named


def _find_runs(root: Path) -> dict[str, _Run]:
    """``find_runs``, with a file below ``root`` that cannot be listed or read as one line."""
    try:
        return find_runs(root)
    except OSError as err:
        raise InputError(
            f"{root}: a file below it cannot be read ({(err.strerror or 'error').lower()}); "
            "expected a folder of training history files"
        ) from None


def _read_run(root: Path, run: _Run) -> History:
    """TensorBoard event files when the run has them, else its most specific history file."""
    if run.events:
        try:
            return event_files.read_folder(run.folder, run.events)
        except OSError as err:
            raise InputError(
                f"{run.folder}: an event file cannot be read ({(err.strerror or 'error').lower()})"
            ) from None
    _, _, content, reader = min(run.files, key=lambda c: (c[0], c[1]))
    return _parse(reader.read, content, format=reader.FORMAT)


def _labelled(history: History, name: str) -> History:
    source = history.source.model_copy(update={"run": name})
    return history.model_copy(update={"source": source})


def _read_folder(root: Path) -> History:
    """The one run a folder holds; a clear error listing them when it holds several."""
    runs = _find_runs(root)
    if not runs:
        raise InputError(
            f"{root}: no training history in this folder; expected a history file or event files"
        )
    if len(runs) > 1:
        names = ", ".join(runs)
        raise InputError(
            f"{root}: holds {len(runs)} training runs ({names}); expected one: pass one run's "
            "folder, or read them all with load_histories (advisor diagnose FOLDER [--run NAME])"
        )
    return _read_run(root, next(iter(runs.values())))


__all__ = ["FORMATS", "READERS", "detect", "find_runs", "load_histories", "load_history"]
