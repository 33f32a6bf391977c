"""pandas ``DataFrame.to_csv`` exports of a training history: an index column first
(an empty header cell, ``Unnamed: 0`` when the file was exported twice, or a named
one such as ``index``), then columns named the way the script named its metrics
(``train_loss``, ``val_dice``, ``valid_acc``, ``loss_val``).

The index counts epochs (from 0, as a DataFrame index does, so shifted to start at
1) when it holds increasing whole numbers; otherwise rows are epochs in order.  An
``epoch`` column, when there is one, wins over the index.
"""

from __future__ import annotations

import csv
import math
import re

from advisor.contract.schemas import History
from advisor.readers.table import Content, HistoryBuilder, csv_rows, parse_number

FORMAT = "pandas_csv"

_INDEX = re.compile(r"(?i)^(|unnamed: ?\d+|index|level_0)$")
# Phase spellings only a script (never Keras' CSVLogger, never Lightning) writes.
_SCRIPT_NAMES = re.compile(
    r"(?i)^(train|training|valid|validation|test)[_/ ]|[_/ ](train|training|val|valid|validation)$"
)


def _header(content: Content) -> tuple[str, list[str]] | None:
    """(delimiter, header) of a numeric table whose header is pandas-like."""
    text = content.text
    if not text or text.lstrip()[:1] in ("{", "["):
        return None
    lines = [line for line in text.splitlines() if line.strip()][:6]
    if len(lines) < 2:
        return None
    for delimiter in (",", ";", "\t"):
        header = [h.strip() for h in next(csv.reader([lines[0]], delimiter=delimiter))]
        if len(header) < 2 or any(not h for h in header[1:]) or any(_number(h) for h in header):
            continue
        rows = [next(csv.reader([line], delimiter=delimiter)) for line in lines[1:]]
        if not all(len(row) == len(header) for row in rows):
            continue
        if not all(any(_number(cell) for cell in row[1:]) for row in rows):
            continue
        names = [h.lower() for h in header]
        if "step" in names:
            return None  # a Lightning metrics.csv
        if _INDEX.match(header[0]) or any(_SCRIPT_NAMES.search(h) for h in header):
            return delimiter, header
    return None


def _number(cell: str) -> bool:
    try:
        return parse_number(cell) is not None
    except ValueError:
        return False


def sniff(content: Content) -> bool:
    """A numeric table with an index column or script-style phase names, no ``step`` column."""
    return _header(content) is not None


def read(content: Content) -> History:
    """One epoch per row, numbered by the ``epoch`` column, else the index, else row order."""
    delimiter, header = _header(content)  # type: ignore[misc]
    builder = HistoryBuilder(FORMAT, content.path)
    rows = csv_rows(content.text or "", delimiter, builder)
    epoch_column = next((h for h in header if h.lower() in ("epoch", "epochs")), None)
    if epoch_column is None and _INDEX.match(header[0]):
        epoch_column = header[0]
    numbers = [_whole(row.get(epoch_column)) for _, row in rows] if epoch_column is not None else []
    counted = bool(numbers) and all(
        n is not None and (i == 0 or n > numbers[i - 1]) for i, n in enumerate(numbers)
    )
    if epoch_column is not None and not counted:
        builder.note(
            f"{epoch_column or 'the index'}: not increasing whole numbers; rows are epochs"
        )
    offset = 1 if counted and numbers[0] == 0 else 0
    for position, (line, row) in enumerate(rows):
        epoch = numbers[position] + offset if counted else position + 1
        if epoch_column is not None:
            row = {k: v for k, v in row.items() if k != epoch_column}
        builder.add_row(epoch, row, where=f"line {line}")
    return builder.build()


def _whole(cell: str | None) -> int | None:
    try:
        value = parse_number(cell)
    except ValueError:
        return None
    if value is None or not math.isfinite(value) or value < 0 or value != int(value):
        return None
    return int(value)
