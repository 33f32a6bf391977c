"""PyTorch Lightning ``CSVLogger`` ``metrics.csv``: one row per logging call, with
``epoch`` and ``step`` columns; step rows and epoch-end rows interleave and leave
the other columns blank.

Per epoch, a value logged at the epoch's end (``train_loss_epoch``, ``val_loss``)
wins; a series logged only per step (``train_loss_step``) is averaged over the epoch.
"""

from __future__ import annotations

import re

from advisor.contract.schemas import History
from advisor.readers.names import normalise
from advisor.readers.table import (
    Content,
    HistoryBuilder,
    csv_rows,
    note_partial_epoch,
    parse_number,
    sniff_csv,
)

FORMAT = "lightning_csv"


def sniff(content: Content) -> bool:
    """A numeric table with a ``step`` column, or with several rows per ``epoch``.

    (Lightning before 1.0 wrote no ``step`` column: one row per logging call with
    its ``epoch`` and a ``created_at`` time, the epoch-end values in rows of their
    own.  A full table whose epoch repeats is Keras' CSVLogger after one-epoch fits.)
    """
    found = sniff_csv(content.text)
    if found is None:
        return False
    names = [h.lower() for h in found[1]]
    if "step" in names:
        return True
    if "epoch" not in names:
        return False
    blank = re.search(r"(?m)^[ \t]*,|,[ \t]*,|,[ \t]*\r?$", (content.text or "")[:100_000])
    if "created_at" not in names and blank is None:
        return False  # every row full: not Lightning's interleaved rows
    column = names.index("epoch")
    epochs = []
    for line in (content.text or "").splitlines()[1:]:
        cells = line.split(found[0])
        try:
            value = parse_number(cells[column]) if len(cells) > column else None
        except ValueError:
            return False
        if value is not None:
            epochs.append(value)
    steps = list(zip(epochs, epochs[1:], strict=False))
    return any(a == b for a, b in steps) and all(a <= b for a, b in steps)


def read(content: Content) -> History:
    """Group rows by epoch (0-based in Lightning, so shifted by one)."""
    delimiter, header = sniff_csv(content.text)  # type: ignore[misc]
    builder = HistoryBuilder(FORMAT, content.path)
    rows = csv_rows(content.text or "", delimiter, builder)
    epoch_column = next((h for h in header if h.lower() == "epoch"), None)
    # Without an epoch column, every row is one point, in order.
    counts: dict[str, dict[int, int]] = {}
    epoch = 0
    grouped: list[tuple[int, str, dict[str, str]]] = []
    for position, (line, row) in enumerate(rows):
        if epoch_column is None:
            epoch = position
        else:
            try:
                value = parse_number(row.get(epoch_column))
            except ValueError:
                value = None
            if value is not None:
                epoch = int(value)
        grouped.append((epoch + 1, f"line {line}", row))
        for name, cell in row.items():
            if cell.strip():
                counts.setdefault(name, {}).setdefault(epoch, 0)
                counts[name][epoch] += 1
    grouped = _without_evaluation_after_training(grouped, builder)
    # A column with several values in an epoch was logged per step: average it.
    per_step = {name for name, by_epoch in counts.items() if max(by_epoch.values()) > 1}
    stepped = {name for name in per_step if normalise(name) is not None}  # not step, epoch
    steps: dict[int, int] = {}
    for epoch_number, where, row in grouped:
        if any(row.get(name, "").strip() for name in stepped):
            steps[epoch_number] = steps.get(epoch_number, 0) + 1
        for name, cell in row.items():
            builder.add(epoch_number, name, cell, where=where, per_step=name in per_step)
    note_partial_epoch(builder, steps)
    return builder.build()


def _trains(row: dict[str, str]) -> bool:
    """The row holds a training value (not validation, test, learning rate or bookkeeping)."""
    for name, cell in row.items():
        found = normalise(name)
        if cell.strip() and found is not None and found.series not in ("lr", "epoch_time"):
            if not found.series.startswith(("val_", "test_")):
                return True
    return False


def _without_evaluation_after_training(grouped, builder: HistoryBuilder):
    """Leave out a last epoch with no training values after epochs that had them.

    ``trainer.validate()`` or ``trainer.test()`` after ``fit`` log at the epoch after
    the last one trained: that evaluation is not an epoch of training.
    """
    if not grouped:
        return grouped
    last = grouped[-1][0]
    trained = {epoch for epoch, _, row in grouped if _trains(row)}
    if last in trained or last - 1 not in trained:
        return grouped
    builder.skip(
        f"epoch {last}: only validation or test values, logged after the last training "
        "epoch (a validate or test call after fit); left out"
    )
    return [item for item in grouped if item[0] != last]
