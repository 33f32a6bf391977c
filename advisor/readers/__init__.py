"""Read a training history in whatever format the user has -> ``schemas.History``.

``load_history(path)`` detects the format from the content, never the file
name: TensorBoard records by their checksummed header, JSON by its keys (this
project's ``history.json``, Hugging Face ``trainer_state.json``, Keras
``history.history`` or its Python repr, Jupyter notebooks, JSON Lines logs such
as Detectron2's ``metrics.json``), CSV by its header
(Lightning's has a ``step`` column or several rows per epoch, a pandas export an
index column or script-style names such as ``train_loss``, Keras' CSVLogger
neither), fastai's ``epoch train_loss valid_loss`` table, and plain-text logs by
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

from pathlib import Path
from typing import Any

from advisor.errors import InputError
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
    tensorboard,
    text_log,
)
from advisor.readers.table import Content
from advisor.schemas import History

# Detection order: the most specific signatures first.
READERS = (
    native,
    hf,
    ipynb,
    keras_json,
    json_lines,
    tensorboard,
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

        content = Content(None, json.dumps(source).encode())
        return _read(content)
    path = Path(source)
    if path.is_dir():
        return _read_folder(path)
    return _read(_content(path))


def _content(path: Path) -> Content:
    """The bytes of a history file; InputError when missing, unreadable or too large."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.__class__.__name__})") from None
    if size > _MAX_BYTES:
        raise InputError(
            f"{path}: {size // 2**20} MiB is too large for a history; expected < 512 MiB"
        )
    try:
        return Content(path, path.read_bytes())
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.__class__.__name__})") from None


def detect(content: Content):
    """The reader module whose signature the content has, or None."""
    return next((reader for reader in READERS if reader.sniff(content)), None)


def _read(content: Content) -> History:
    return _reader(content).read(content)


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
        runs = find_runs(path)
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
        return read_all(content)
    return {path.name: reader.read(content)}


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
    event_files = tensorboard.find_event_files(root)
    event_folders = {path.parent for path in event_files}
    for events_file in event_files:
        folder = events_file.parent
        while folder != root and (
            folder.name.lower() in tensorboard.PHASE_DIRS or folder.parent in event_folders
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


def _read_run(root: Path, run: _Run) -> History:
    """TensorBoard event files when the run has them, else its most specific history file."""
    if run.events:
        return tensorboard.read_folder(run.folder, run.events)
    _, _, content, reader = min(run.files, key=lambda c: (c[0], c[1]))
    return reader.read(content)


def _labelled(history: History, name: str) -> History:
    source = history.source.model_copy(update={"run": name})
    return history.model_copy(update={"source": source})


def _read_folder(root: Path) -> History:
    """The one run a folder holds; a clear error listing them when it holds several."""
    runs = find_runs(root)
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
