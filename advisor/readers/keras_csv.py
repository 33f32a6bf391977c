"""Keras ``CSVLogger`` files: a header (``epoch,accuracy,loss,val_accuracy,val_loss``)
and one row per epoch, epochs counted from 0.  Any per-epoch table without a
``step`` column is read the same way (rows in order when there is no epoch column).
"""

from __future__ import annotations

from advisor.contract.schemas import History
from advisor.readers.table import Content, HistoryBuilder, csv_rows, parse_number, sniff_csv

FORMAT = "keras_csv"


def sniff(content: Content) -> bool:
    """A numeric table whose header has no ``step`` column."""
    found = sniff_csv(content.text)
    return found is not None and "step" not in [h.lower() for h in found[1]]


def read(content: Content) -> History:
    """The file's run (its last, with a note, when CSVLogger appended several runs)."""
    runs = read_all(content)
    history = list(runs.values())[-1]
    if len(runs) > 1:
        note = (
            f"the file holds {len(runs)} training runs (its epoch column starts again at "
            "0); read the last; advisor diagnose (or load_histories) gives each"
        )
        source = history.source.model_copy(update={"notes": [*history.source.notes, note]})
        history = history.model_copy(update={"source": source})
    return history


def read_all(content: Content) -> dict[str, History]:
    """One History per run: ``CSVLogger(append=True)`` adds a new run's rows below the last.

    One epoch per row; Keras' 0-based epoch column is shifted to start at 1.  A run
    starts again where the epoch column falls back to 0 or 1, unless the loss goes on
    from where it stopped (nearer its last value than its first): that is the same
    run resumed, read as one with its epochs numbered on.
    """
    delimiter, header = sniff_csv(content.text)  # type: ignore[misc]
    skipped = HistoryBuilder(FORMAT, content.path)
    rows = csv_rows(content.text or "", delimiter, skipped)
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
