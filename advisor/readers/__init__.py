"""Read a training history in whatever format the user has -> ``schemas.History``.

``load_history(path)`` detects the format from the content, never the file
name: TensorBoard records by their checksummed header, JSON by its keys (this
project's ``history.json``, Hugging Face ``trainer_state.json``, Keras
``history.history``), CSV by its header (Lightning's has a ``step`` column,
Keras' CSVLogger not), and plain-text logs by ``Epoch N`` markers followed by
``name: value`` pairs.  One module per format; each has ``FORMAT``,
``sniff(content)`` and ``read(content)``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from advisor.errors import InputError
from advisor.inputs import checked_folder, read_bytes
from advisor.readers import hf, keras_csv, keras_json, lightning, native, tensorboard, text_log
from advisor.readers.table import Content
from advisor.schemas import History

# Detection order: the most specific signatures first.
READERS = (native, hf, keras_json, tensorboard, lightning, keras_csv, text_log)
FORMATS = tuple(reader.FORMAT for reader in READERS)
_MAX_BYTES = 512 * 1024 * 1024


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
    data = read_bytes(path, what="training history", max_bytes=_MAX_BYTES)
    return _read(Content(path, data))


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
    if not content.data.strip():
        raise InputError(f"{content.label}: is empty; expected a training history")
    reader = detect(content)
    if reader is None:
        raise InputError(
            f"{content.label}: not a training history this reader knows; expected "
            "Keras history JSON or CSVLogger CSV, Lightning metrics.csv, Hugging Face "
            "trainer_state.json, TensorBoard events, advisor history.json "
            "or an 'Epoch N ... loss: x' log"
        )
    return _parse(reader, content)


def _parse(reader, content: Content) -> History:
    """``reader.read(content)``, with a parser's own failure (a number too long for
    ``int``, nesting past the recursion limit, a malformed CSV field) as one line."""
    try:
        return reader.read(content)
    except _PARSER_ERRORS as err:
        raise InputError(
            f"{content.label}: looks like {reader.FORMAT} but cannot be parsed "
            f"({_why(err)}); expected a well-formed {reader.FORMAT} history"
        ) from None


def _why(err: Exception) -> str:
    if isinstance(err, csv.Error):
        return "a CSV field over 128 KiB or malformed quoting"
    if isinstance(err, RecursionError):
        return "nested too deeply"
    if isinstance(err, (TypeError, AttributeError, KeyError, IndexError)):
        return "a field of the wrong type or shape"
    return type(err).__name__


def _read_folder(root: Path) -> History:
    """TensorBoard event files anywhere below, else the one history file at the top level."""
    try:
        events = tensorboard.find_event_files(root)
        if events:
            return tensorboard.read_folder(root, events)
        files = sorted(p for p in root.iterdir() if p.is_file() and p.stat().st_size < _MAX_BYTES)
    except OSError as err:
        raise InputError(
            f"{root}: a file below it cannot be read ({(err.strerror or 'error').lower()}); "
            "expected a folder of training history files"
        ) from None
    candidates = []
    for path in files:
        content = Content(path, read_bytes(path, what="training history", max_bytes=_MAX_BYTES))
        reader = detect(content) if content.data.strip() else None
        if reader is not None:
            candidates.append((READERS.index(reader), path.name, content, reader))
    if not candidates:
        raise InputError(
            f"{root}: no training history in this folder; expected a history file or event files"
        )
    _, _, content, reader = min(candidates, key=lambda c: (c[0], c[1]))
    return _parse(reader, content)


__all__ = ["FORMATS", "READERS", "detect", "load_history"]
