"""What every history reader shares: number parsing, a tolerant JSON parse, and
the builder that turns (epoch, raw name, value) triples into one History.

The builder normalises names, keeps the first of two raw names that mean the
same series, prefers per-epoch over per-step values (averaging steps when an
epoch has only those), records everything it had to leave out in
``source.skipped``, and refuses a file with no usable series with one
``InputError`` line.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from advisor.contract.errors import InputError
from advisor.contract.schemas import History, HistorySource
from advisor.readers.names import normalise

_SPECIAL = {
    "nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-infinity": -math.inf,
}
_MISSING = {"", "none", "null", "n/a", "na", "-", "#na#"}  # fastai prints #na# for no value


def parse_number(value: Any) -> float | None:
    """A float from a cell, a JSON value or a log token; None when the cell is empty.

    Raises:
        ValueError: the value is present but not a number.
    """
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list) and len(value) == 1:  # a scalar logged as a one-element list
        return parse_number(value[0])
    text = str(value).strip().strip('"').lower()
    if text.startswith("tensor(") and text.endswith(")"):  # printed torch scalars
        text = text[7:-1].split(",")[0].strip()
    if text in _MISSING:
        return None
    if text in _SPECIAL:
        return _SPECIAL[text]
    return float(text)


def loads_tolerant(text: str) -> tuple[Any, int | None]:
    """Parse JSON; if the text was cut off, parse the longest complete prefix.

    Returns:
        (value, cut) where ``cut`` is None for a complete file, else the number
        of characters of the original text that were kept.

    Raises:
        json.JSONDecodeError: the text is not JSON, or no prefix of it can be repaired.
    """
    try:
        return json.loads(text), None
    except json.JSONDecodeError as err:
        original = err
    # A truncated file fails near its end; anything else is simply not JSON.
    if original.pos < len(text.rstrip()) - 1 and not original.msg.startswith("Unterminated"):
        raise original
    for cut, closers in reversed(_cut_points(text)[-400:]):
        candidate = text[:cut].rstrip().rstrip(",") + closers
        try:
            return json.loads(candidate), cut
        except json.JSONDecodeError:
            continue
    raise original


def _cut_points(text: str) -> list[tuple[int, str]]:
    """Positions just after a complete element, with the brackets still open there."""
    points: list[tuple[int, str]] = []
    stack: list[str] = []
    in_string = escaped = False
    for i, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "[{":
            stack.append("]" if char == "[" else "}")
            points.append((i + 1, "".join(reversed(stack))))
        elif char in "]}":
            if stack:
                stack.pop()
            points.append((i + 1, "".join(reversed(stack))))
        elif char == ",":
            points.append((i, "".join(reversed(stack))))
    return points


class HistoryBuilder:
    """Collects values per epoch under normalised names and builds the History."""

    def __init__(self, fmt: str, path: str | Path | None):
        self.format = fmt
        self.path = str(path) if path is not None else None
        self.skipped: list[str] = []
        self.notes: list[str] = []
        # normalised series -> granularity -> epoch -> values (several when logged per step)
        self._values: dict[str, dict[str | None, dict[int, list[float | None]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(list))
        )
        self._raw_of: dict[tuple[str, str | None], str] = {}

    def skip(self, message: str) -> None:
        """Record something that was left out, and why."""
        if message not in self.skipped:
            self.skipped.append(message)

    def note(self, message: str) -> None:
        """Record how values were derived (summed heads, per-step means, a partial epoch)."""
        if message not in self.notes:
            self.notes.append(message)

    def add(
        self, epoch: int, raw_name: str, value: Any, where: str = "", per_step: bool = False
    ) -> None:
        """Record one value of a raw-named series at an epoch (parse errors are skipped).

        ``per_step`` marks values logged several times an epoch (averaged unless
        a per-epoch value of the same series exists).
        """
        name = normalise(raw_name)
        if name is None:
            return
        granularity = "step" if per_step else name.granularity
        key = (name.series, granularity)
        first_raw = self._raw_of.setdefault(key, raw_name)
        if first_raw != raw_name:
            self.skip(
                f"{raw_name!r}: same series as {first_raw!r} ({name.series}); kept {first_raw!r}"
            )
            return
        try:
            number = parse_number(value)
        except (TypeError, ValueError):
            self.skip(
                f"{where or f'epoch {epoch}'}: {raw_name} = {str(value)[:40]!r} is not a number"
            )
            return
        if number is None:
            return
        self._values[name.series][granularity][epoch].append(number)

    def add_row(self, epoch: int, row: dict[str, Any], where: str = "") -> None:
        """Record every column of one row."""
        for raw_name, value in row.items():
            self.add(epoch, raw_name, value, where)

    def build(self, task: str | None = None, n_classes: int | None = None) -> History:
        """The History; InputError when nothing usable was read."""
        series_by_epoch: dict[str, dict[int, float]] = {}
        for series, by_granularity in self._values.items():
            # Prefer values logged per epoch, then unmarked ones, then the mean of per-step values.
            merged: dict[int, float] = {}
            for granularity in ("step", None, "epoch"):
                for epoch, values in by_granularity.get(granularity, {}).items():
                    merged[epoch] = values[-1] if granularity != "step" else _mean(values)
            series_by_epoch[series] = merged
        if not any(n.startswith("val_") for n in series_by_epoch):
            # Many scripts call their held-out split "test": it is the validation curve here.
            for name in [n for n in series_by_epoch if n.startswith("test_")]:
                series_by_epoch["val_" + name.removeprefix("test_")] = series_by_epoch.pop(name)
        usable = {n: s for n, s in series_by_epoch.items() if s}
        self._leave_out_summaries(usable)
        for prefix in ("", "val_"):
            self._total_from_heads(usable, prefix)
        if not usable:
            where = self.path or "history"
            raise InputError(
                f"{where}: no usable series ({self.format} format); expected per-epoch values "
                "such as loss, val_loss or accuracy"
            )
        epochs = sorted(set().union(*(s.keys() for s in usable.values())))
        series = {name: [values.get(e) for e in epochs] for name, values in sorted(usable.items())}
        source = HistorySource(
            format=self.format, path=self.path, skipped=self.skipped, notes=self.notes
        )
        return History(source=source, epochs=epochs, series=series, task=task, n_classes=n_classes)

    def _leave_out_summaries(self, usable: dict[str, dict[int, float]]) -> None:
        """A finite value logged once in a run of 4 or more epochs is a summary, not a curve.

        (A final ``test_loss``, a ``best`` score printed at the end.)  The training
        ``loss`` always stays, and so does a non-finite value: the diagnosis must see it.
        """
        epochs = set().union(*(s.keys() for s in usable.values())) if usable else set()
        if len(epochs) < 4:
            return
        for name in [n for n, s in usable.items() if len(s) == 1 and n != "loss"]:
            ((epoch, value),) = usable[name].items()
            if math.isfinite(value) and len(usable) > 1:
                del usable[name]
                self.skip(f"{name}: logged once (epoch {epoch}), a summary rather than a curve")

    def _total_from_heads(self, usable: dict[str, dict[int, float]], prefix: str) -> None:
        """Without a total ``loss``, the loss heads (box_loss, cls_loss ...) summed per epoch.

        A logged total is always the primary loss and the heads stay as their own series.
        One head alone is the loss; several are summed at the epochs where all were logged.
        """
        total = prefix + "loss"
        if total in usable:
            return
        heads = sorted(n for n in usable if _is_loss_head(n, prefix))
        if not heads:
            return
        if len(heads) == 1:
            usable[total] = dict(usable[heads[0]])
            self.note(f"{total}: the only loss series logged, {heads[0]!r}")
            return
        shared = set.intersection(*(set(usable[h]) for h in heads))
        unrun = sorted(e for e in shared if all(usable[h][e] == 0.0 for h in heads))
        if unrun and len(unrun) < len(shared):
            # Ultralytics writes 0 for every validation head at epochs it did not validate.
            for name in [n for n in usable if n in heads or (prefix and n.startswith(prefix))]:
                for epoch in unrun:
                    if usable[name].get(epoch) == 0.0:
                        del usable[name][epoch]
            shared -= set(unrun)
            self.skip(
                f"{', '.join(heads)}: all exactly 0 at {len(unrun)} epochs "
                f"({unrun[0]}-{unrun[-1]}), where this split was not evaluated; "
                "these zeros read as missing"
            )
        usable[total] = {
            e: math.fsum(usable[h][e] for h in heads)
            if all(math.isfinite(usable[h][e]) for h in heads)
            else next(usable[h][e] for h in heads if not math.isfinite(usable[h][e]))
            for e in sorted(shared)
        }
        self.note(f"{total}: no total logged; the sum of {' + '.join(heads)} per epoch")


# Name parts that make a loss-named series a setting, not a loss (mixed precision's loss_scale).
_NOT_HEADS = {"scale", "scaler", "weight", "weights", "ratio", "coef", "factor"}


def _is_loss_head(name: str, prefix: str) -> bool:
    """A per-component loss of the given split: rpn_loss, train/box_loss, loss_classifier."""
    if prefix:
        if not name.startswith(prefix):
            return False
        name = name.removeprefix(prefix)
    elif name.startswith(("val_", "test_")):
        return False
    tokens = name.split("_")
    return (
        len(tokens) > 1
        and "loss" in (tokens[0], tokens[-1])
        and not _NOT_HEADS & set(tokens)
        and "total" not in tokens
    )


def note_partial_epoch(builder: HistoryBuilder, steps_per_epoch: dict[int, int]) -> None:
    """Note a last epoch that logged clearly fewer steps than the epochs before it.

    Its value stays in the history (the mean of the steps it logged); the note says
    it covers part of an epoch only.
    """
    if len(steps_per_epoch) < 2:
        return
    last = max(steps_per_epoch)
    before = sorted(n for e, n in steps_per_epoch.items() if e != last)
    typical = before[len(before) // 2]
    if steps_per_epoch[last] < 0.9 * typical:
        builder.note(
            f"epoch {last} is partial: {steps_per_epoch[last]} logged steps against "
            f"{typical} in a typical epoch; its values are the mean of those steps"
        )


def _mean(values: list[float | None]) -> float:
    finite = [v for v in values if v is not None]
    if any(not math.isfinite(v) for v in finite):
        return next(v for v in finite if not math.isfinite(v))  # a NaN step poisons the epoch
    return sum(finite) / len(finite)


# ----------------------------------------------------------------------------- CSV


def last_run(runs: dict[str, History], holds: str) -> History:
    """The last of a file's runs; when there are several, a note says so (``holds`` says what
    the file holds and how the runs were told apart) and that each can be read alone."""
    history = list(runs.values())[-1]
    if len(runs) == 1:
        return history
    note = f"{holds.format(n=len(runs))}; read the last; advisor diagnose (or load_histories) gives each"
    source = history.source.model_copy(update={"notes": [*history.source.notes, note]})
    return history.model_copy(update={"source": source})


def sniff_csv(text: str | None) -> tuple[str, list[str]] | None:
    """(delimiter, header) when the text is a table with a header of names and numeric rows."""
    if not text:
        return None
    text = text[_preamble(text) :]
    lines = [line for line in text.splitlines() if line.strip()][:6]
    if len(lines) < 2:
        return None
    for delimiter in (",", ";", "\t"):
        header = next(csv.reader([lines[0]], delimiter=delimiter))
        if len(header) < 2 or any(not h.strip() or _is_number(h) for h in header):
            continue
        rows = [next(csv.reader([line], delimiter=delimiter)) for line in lines[1:]]
        if any(len(row) >= 2 and any(_is_number(cell) for cell in row) for row in rows):
            return delimiter, [h.strip() for h in header]
    return None


def _preamble(text: str) -> int:
    """Length of a title line above a table's header (a line with no delimiter), else 0."""
    first, _, rest = text.partition("\n")
    second = rest.partition("\n")[0]
    if first.strip() and not any(d in first for d in ",;\t") and any(d in second for d in ",;\t"):
        return len(first) + 1
    return 0


def _is_number(cell: str) -> bool:
    try:
        return parse_number(cell) is not None
    except ValueError:
        return False


def csv_rows(
    text: str, delimiter: str, builder: HistoryBuilder
) -> list[tuple[int, dict[str, str]]]:
    """(line number, {column: cell}) per data row; a cut-off last row is skipped."""
    start = _preamble(text)
    if start:
        builder.skip(f"line 1: {text[:start].strip()[:40]!r} before the header; not a row")
    shift = text[:start].count("\n")
    text = text[start:]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
        raw_rows = [(reader.line_num + shift, row) for row in reader]
    except csv.Error as err:
        where = builder.path or "history"
        raise InputError(
            f"{where}: line {reader.line_num + shift}: {err}; expected a CSV table"
        ) from None
    rows = []
    ends_cleanly = text.endswith(("\n", "\r"))
    for index, (line, row) in enumerate(raw_rows):
        if not any(cell.strip() for cell in row):
            continue
        if index == len(raw_rows) - 1 and not ends_cleanly:
            # Loggers end every row with a newline: without one the last cell may be cut short.
            builder.skip(f"line {line}: the file ends inside this row (truncated); row left out")
            continue
        if len(row) != len(header):
            builder.skip(
                f"line {line}: {len(row)} cells for {len(header)} columns; read the first ones"
            )
        rows.append((line, dict(zip(header, row, strict=False))))
    return rows


# ----------------------------------------------------------------------------- file content


class Content:
    """A file's bytes, its text and its JSON value, each worked out once for the sniffers."""

    def __init__(self, path: Path | None, data: bytes):
        self.path = path
        self.data = data
        self.label = str(path) if path is not None else "history"
        self._text: str | None | bool = False
        self._json: Any = _UNSET
        self.json_cut: int | None = None

    @property
    def text(self) -> str | None:
        """The content as UTF-8 text (BOM removed), or None for binary data."""
        if self._text is False:
            try:
                text = self.data.decode("utf-8-sig")
                self._text = None if "\x00" in text[:4096] else text
            except UnicodeDecodeError:
                self._text = None
        return self._text  # type: ignore[return-value]

    @property
    def json(self) -> Any:
        """The parsed JSON value (a truncated file is repaired), or None if not JSON."""
        if self._json is _UNSET:
            self._json = None
            text = self.text
            if text is not None and text.lstrip()[:1] in ("{", "["):
                try:
                    self._json, self.json_cut = loads_tolerant(text)
                except json.JSONDecodeError:
                    self._json = None
        return self._json

    def note_cut(self, builder_skip) -> None:
        """Tell the builder when the JSON was cut off and only its complete prefix was read."""
        if self.json_cut is not None:
            builder_skip(
                f"file ends early (cut at character {self.json_cut} of {len(self.text or '')}); "
                "read every complete value before the cut"
            )


_UNSET = object()
