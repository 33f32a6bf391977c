"""Keras ``history.history`` saved as JSON: ``{"loss": [...], "val_loss": [...], ...}``.

Also accepted: the same table under a ``history`` key (a pickled-then-dumped
History object), an ``epoch`` list (0-based, as Keras counts), and the table
written as Python's ``repr`` (``str(history.history)``: single quotes, bare
``nan``, ``np.float64(0.5)``), on its own or as one JSON string.  Hand-written
loops save the same table per split (``{"train": {"l2": [...]}, "valid": {...}}``:
read as ``train_l2``, ``valid_l2``) or beside lists that are not series (per-episode
records): those lists are left out and listed in ``source.skipped``.
"""

from __future__ import annotations

import ast
import json
import re

from advisor.contract.schemas import History
from advisor.readers.table import Content, HistoryBuilder

FORMAT = "keras_json"
_NUMPY_SCALAR = re.compile(r"\bnp\.(?:float|int)(?:16|32|64)\(([^()]*)\)")
_BARE_SPECIAL = re.compile(r"(?<![\w'\"])(-?inf|nan)(?![\w'\"])")
_MAX_REPR = 32 * 1024 * 1024


def _data(content: Content):
    """The JSON value, or the dict a Python repr (bare or inside a JSON string) spells."""
    data = content.json
    text = (content.text or "").strip()
    if data is None and text[:1] == '"' and len(text) < _MAX_REPR:
        try:
            data = json.loads(text)  # a JSON string: json.dump(str(history.history), f)
        except json.JSONDecodeError:
            return None
    if isinstance(data, str):
        return _python_dict(data)
    if data is None and text[:1] == "{" and '"' not in text[:4096]:
        return _python_dict(text)  # a repr quotes with ' (JSON Lines, with ", never get here)
    return data


def _python_dict(text: str) -> dict | None:
    text = text.strip()
    if not text.startswith("{") or len(text) > _MAX_REPR:
        return None
    text = _BARE_SPECIAL.sub(r"'\1'", _NUMPY_SCALAR.sub(r"\1", text))
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _by_split(data: dict) -> dict:
    """``{"train": {"l2": [...]}}`` -> ``{"train_l2": [...]}`` when every value is such a
    table of lists (one level of nesting, as per-split history dicts are saved)."""
    if data and all(
        isinstance(inner, dict) and inner and all(isinstance(v, list) for v in inner.values())
        for inner in data.values()
    ):
        return {f"{split}_{name}": v for split, inner in data.items() for name, v in inner.items()}
    return data


def _is_series(values: list) -> bool:
    """A list of numbers (or number-like cells), not of records or nested lists."""
    return all(isinstance(v, (int, float, str)) or v is None for v in values)


def _table(data) -> dict | None:
    if isinstance(data, dict) and isinstance(data.get("history"), dict):
        data = data["history"]
    if not isinstance(data, dict) or not data:
        return None
    data = _by_split(data)
    lists = {k: v for k, v in data.items() if isinstance(v, list)}
    if not lists or len(lists) < len(data) / 2:
        return None
    return lists


def sniff(content: Content) -> bool:
    """A JSON object mapping metric names to lists of numbers."""
    table = _table(_data(content))
    if table is None:
        return False
    series = [values for values in table.values() if _is_series(values[:3])]
    values = [v for values in series for v in values[:3]]
    return bool(values) and len(series) * 2 >= len(table)


def read(content: Content) -> History:
    """One epoch per list position (or per entry of an ``epoch`` list)."""
    builder = HistoryBuilder(FORMAT, content.path)
    content.note_cut(builder.skip)
    table = _table(_data(content)) or {}
    if not isinstance(content.json, dict):
        builder.note("read from a Python repr of history.history, not JSON")
    epochs = table.pop("epoch", None)
    for name in [name for name, series in table.items() if not _is_series(series)]:
        builder.skip(f"{name}: a list of records or lists, not a series of numbers; left out")
        del table[name]
    length = max(len(series) for series in table.values()) if table else 0
    if (
        isinstance(epochs, list)
        and len(epochs) >= length
        and all(isinstance(e, int) for e in epochs)
    ):
        offset = 1 if epochs and epochs[0] == 0 else 0
        numbers = [e + offset for e in epochs]
    else:
        numbers = list(range(1, length + 1))
    for name, series in table.items():
        if len(series) < length:
            builder.skip(f"{name}: {len(series)} values for {length} epochs; the rest are missing")
        for index, value in enumerate(series):
            builder.add(numbers[index], name, value, where=f"{name}[{index}]")
    return builder.build()
