"""Keras ``CSVLogger`` files: a header (``epoch,accuracy,loss,val_accuracy,val_loss``)
and one row per epoch, epochs counted from 0.  Any per-epoch table without a
``step`` column is read the same way (rows in order when there is no epoch column),
and so are two bare shapes scripts save: one named column of numbers
(``pd.DataFrame({"loss": losses}).to_csv(index=False)``) and a table of numbers
without a header (``np.savetxt`` of ``[train_losses, val_losses]``: one or two
series, as rows or as columns, read as ``loss`` then ``val_loss`` with a note).
"""

from __future__ import annotations

import csv
import math

from advisor.contract.schemas import History
from advisor.readers.names import normalise
from advisor.readers.table import (
    Content,
    HistoryBuilder,
    csv_rows,
    last_run,
    parse_number,
    sniff_csv,
)

FORMAT = "keras_csv"
_BARE_NAMES = ("loss", "val_loss")


def sniff(content: Content) -> bool:
    """A numeric table whose header has no ``step`` column, or one of the bare shapes."""
    return _table(content.text) is not None


def _table(text: str | None) -> tuple[str, str, list[str], str | None] | None:
    """(text, delimiter, header, note) of the table to read; a bare table gets a header."""
    found = sniff_csv(text)
    if found is not None:
        if "step" in [h.lower() for h in found[1]]:
            return None  # a Lightning metrics.csv
        return text or "", found[0], found[1], None
    return _one_column(text) or _headerless(text)


def _one_column(text: str | None) -> tuple[str, str, list[str], str | None] | None:
    """A single column: a loss or metric name, then one number per line."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if len(lines) < 3 or any(d in lines[0] for d in ",;\t"):
        return None
    name = normalise(lines[0].strip('"'))
    if name is None or not name.series.endswith(("loss", "accuracy")):
        return None
    if not all(_numbers([line]) for line in lines[1:]):
        return None
    return text or "", ",", [lines[0].strip('"')], None


def _headerless(text: str | None) -> tuple[str, str, list[str], str | None] | None:
    """Numbers only, no header: one or two series, as rows (fewer rows than columns) or
    columns; they become ``loss`` and ``val_loss``, and the note says so."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines or not _numbers(lines[0].replace(";", " ").replace(",", " ").split()):
        return None  # a header, or text: not a bare table
    for delimiter in (",", ";", "\t", " "):
        rows = [
            [c for c in next(csv.reader([line], delimiter=delimiter)) if c.strip()]
            for line in lines
        ]
        if len({len(row) for row in rows}) != 1 or not all(_numbers(r) for r in rows):
            continue
        series = (
            rows if len(rows) < len(rows[0]) else [list(col) for col in zip(*rows, strict=True)]
        )
        if len(series) > 1 and _counter(series[0]):
            series = series[1:]  # an epoch column (1, 2, 3 ...), not a series
        if len(series) > len(_BARE_NAMES) or len(series[0]) < 2:
            return None
        names = list(_BARE_NAMES[: len(series)])
        table = (
            ",".join(names) + "\n" + "".join(",".join(v) + "\n" for v in zip(*series, strict=True))
        )
        layout = "row" if len(rows) < len(rows[0]) else "column"
        note = f"no header: one series per {layout}, read as {' and '.join(names)}, in that order"
        return table, ",", names, note
    return None


def _counter(cells: list[str]) -> bool:
    """Whole numbers counting up by one (an epoch or row index)."""
    values = [parse_number(cell) for cell in cells]
    return all(v is not None and math.isfinite(v) and v == int(v) for v in values) and all(
        b - a == 1
        for a, b in zip(values, values[1:], strict=False)  # type: ignore[operator]
    )


def _numbers(cells: list[str]) -> bool:
    try:
        return bool(cells) and all(parse_number(cell) is not None for cell in cells)
    except ValueError:
        return False


def read(content: Content) -> History:
    """The file's run (its last, with a note, when CSVLogger appended several runs)."""
    runs = read_all(content)
    return last_run(runs, "the file holds {n} training runs (its epoch column starts again at 0)")


def read_all(content: Content) -> dict[str, History]:
    """One History per run: ``CSVLogger(append=True)`` adds a new run's rows below the last.

    One epoch per row; Keras' 0-based epoch column is shifted to start at 1.  A run
    starts again where the epoch column falls back to 0 or 1, unless the loss goes on
    from where it stopped (nearer its last value than its first): that is the same
    run resumed, read as one with its epochs numbered on.
    """
    text, delimiter, header, note = _table(content.text)  # type: ignore[misc]
    skipped = HistoryBuilder(FORMAT, content.path)
    if note is not None:
        skipped.note(note)
    rows = csv_rows(text, delimiter, skipped)
    epoch_column = next((h for h in header if h.lower() == "epoch"), None)
    parts: list[list[tuple[int, int, dict[str, str]]]] = [[]]
    offset = None
    previous = None
    for position, (line, row) in enumerate(rows, start=1):
        epoch = position - sum(len(part) for part in parts[:-1])
        if epoch_column is not None:
            try:
                value = parse_number(row.get(epoch_column))
            except ValueError:
                value = None
            if value is None:
                skipped.skip(f"line {line}: no epoch number; row left out")
                continue
            if previous is not None and value < previous and value <= 1:
                if _resumed(parts[-1], row):
                    skipped.note(
                        f"line {line}: the epoch count starts again but the loss goes on from "
                        "where it stopped (a resumed run): read as one run, epochs numbered on"
                    )
                    offset = parts[-1][-1][1] + 1 - int(value)
                    previous = value
                    parts[-1].append((line, int(value) + offset, row))
                    continue
                parts.append([])
                offset = None
            elif previous is not None and value == previous and parts[-1]:
                # The same epoch again: fit(epochs=1) called in a loop, appending a row each.
                skipped.note(f"epoch {int(value)} repeated: one-epoch fits, counted in order")
                offset = parts[-1][-1][1] + 1 - int(value)
            offset = (1 if value == 0 else 0) if offset is None else offset
            previous = value
            epoch = int(value) + offset
        parts[-1].append((line, epoch, row))
    runs: dict[str, History] = {}
    for number, part in enumerate(parts, start=1):
        builder = HistoryBuilder(FORMAT, content.path)
        for message in skipped.skipped:
            builder.skip(message)
        for message in skipped.notes:
            builder.note(message)
        for line, epoch, row in part:
            builder.add_row(epoch, row, where=f"line {line}")
        history = builder.build()
        if len(parts) > 1:
            source = history.source.model_copy(update={"run": f"run {number}"})
            history = history.model_copy(update={"source": source})
        runs[f"run {number}" if len(parts) > 1 else _name(content)] = history
    return runs


def _loss(row: dict[str, str]) -> float | None:
    cell = next((v for k, v in row.items() if k.strip().lower() == "loss"), None)
    try:
        return parse_number(cell)
    except ValueError:
        return None


def _resumed(part: list[tuple[int, int, dict[str, str]]], row: dict[str, str]) -> bool:
    """The row's loss is nearer the part's last loss than its first: training went on."""
    if len(part) < 2:
        return False
    first, last, now = _loss(part[0][2]), _loss(part[-1][2]), _loss(row)
    if first is None or last is None or now is None:
        return False
    return abs(now - last) < abs(now - first)


def _name(content: Content) -> str:
    return content.path.name if content.path is not None else "history"
