"""Keras ``history.history`` saved as JSON: ``{"loss": [...], "val_loss": [...], ...}``.

Also accepted: the same table under a ``history`` key (a pickled-then-dumped
History object), and an ``epoch`` list (0-based, as Keras counts).
"""

from __future__ import annotations

from advisor.readers.table import Content, HistoryBuilder
from advisor.schemas import History

FORMAT = "keras_json"


def _table(data) -> dict | None:
    if isinstance(data, dict) and isinstance(data.get("history"), dict):
        data = data["history"]
    if not isinstance(data, dict) or not data:
        return None
    lists = {k: v for k, v in data.items() if isinstance(v, list)}
    if not lists or len(lists) < len(data) / 2:
        return None
    return lists


def sniff(content: Content) -> bool:
    """A JSON object mapping metric names to lists of numbers."""
    table = _table(content.json)
    if table is None:
        return False
    values = [v for series in table.values() for v in series[:3]]
    return bool(values) and all(isinstance(v, (int, float, str)) or v is None for v in values)


def read(content: Content) -> History:
    """One epoch per list position (or per entry of an ``epoch`` list)."""
    builder = HistoryBuilder(FORMAT, content.path)
    content.note_cut(builder.skip)
    table = _table(content.json) or {}
    epochs = table.pop("epoch", None)
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
