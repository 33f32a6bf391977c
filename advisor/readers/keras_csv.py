"""Keras ``CSVLogger`` files: a header (``epoch,accuracy,loss,val_accuracy,val_loss``)
and one row per epoch, epochs counted from 0.  Any per-epoch table without a
``step`` column is read the same way (rows in order when there is no epoch column).
"""

from __future__ import annotations

from advisor.readers.table import Content, HistoryBuilder, csv_rows, parse_number, sniff_csv
from advisor.schemas import History

FORMAT = "keras_csv"


def sniff(content: Content) -> bool:
    """A numeric table whose header has no ``step`` column."""
    found = sniff_csv(content.text)
    return found is not None and "step" not in [h.lower() for h in found[1]]


def read(content: Content) -> History:
    """One epoch per row; Keras' 0-based epoch column is shifted to start at 1."""
    delimiter, header = sniff_csv(content.text)  # type: ignore[misc]
    builder = HistoryBuilder(FORMAT, content.path)
    rows = csv_rows(content.text or "", delimiter, builder)
    epoch_column = next((h for h in header if h.lower() == "epoch"), None)
    offset = None
    for position, (line, row) in enumerate(rows, start=1):
        epoch = position
        if epoch_column is not None:
            try:
                value = parse_number(row.get(epoch_column))
            except ValueError:
                value = None
            if value is None:
                builder.skip(f"line {line}: no epoch number; row left out")
                continue
            offset = (1 if value == 0 else 0) if offset is None else offset
            epoch = int(value) + offset
        builder.add_row(epoch, row, where=f"line {line}")
    return builder.build()
