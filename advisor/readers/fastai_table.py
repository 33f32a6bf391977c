"""fastai's training table as text: a header ``epoch  train_loss  valid_loss  accuracy
time`` and one row per epoch (``0  0.52  0.61  0.81  00:12``), epochs from 0.

fastai computes its metrics (``accuracy``, ``error_rate`` ...) on the validation set,
so a metric column without a phase is read as a validation series, and
``error_rate`` also gives ``val_accuracy`` (one minus it) when no accuracy is shown.

fastai prints it to a console as whitespace-aligned columns and to a notebook as an
HTML table (kept as HTML when the notebook is exported to Markdown); HTML tables are
turned into the same text first.  Cells that are not
numbers (``00:12``, ``#na#``) are left empty.  A second header starts a second table
(``fine_tune`` prints one for the frozen epochs, one for the rest): ``read`` gives
the last, ``tables`` every one.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from advisor.contract.schemas import History
from advisor.readers.names import normalise
from advisor.readers.table import Content, HistoryBuilder, parse_number

FORMAT = "fastai_table"

_HEADER = re.compile(r"(?i)^\s*epoch\s+(?:[a-z][\w()\-]*\s*)+$")
_ROW = re.compile(r"^\s*(\d+)\s+\S")


def _header(line: str) -> list[str] | None:
    """Column names of a table header whose columns include a loss, else None."""
    if _HEADER.match(line) is None:
        return None
    names = line.split()
    if not any((n := normalise(name)) is not None and n.series.endswith("loss") for name in names):
        return None
    return names


def tables(text: str) -> list[tuple[list[str], list[tuple[int, list[str]]]]]:
    """(header, [(line number, cells)]) of every table in the text, in order."""
    found: list[tuple[list[str], list[tuple[int, list[str]]]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        header = _header(line)
        if header is not None:
            found.append((header, []))
        elif found and _ROW.match(line) is not None:
            found[-1][1].append((number, line.split()))
    return [(header, rows) for header, rows in found if rows]


def _text(content: Content) -> str:
    """The content's text, its HTML tables (a notebook exported to Markdown) as text."""
    text = content.text or ""
    if "<table" in text and "<th>epoch</th>" in text:
        return html_tables(text)
    return text


def sniff(content: Content) -> bool:
    """Text holding a header with ``epoch`` and a loss column, then numbered rows."""
    text = content.text
    if not text or text.lstrip()[:1] in ("{", "["):
        return False
    return bool(tables(_text(content)[:200_000]))


def read(content: Content) -> History:
    """The last table of the text (a note says when there were several)."""
    found = tables(_text(content))
    history = read_table(*found[-1], content)
    if len(found) > 1:
        note = f"{len(found)} training tables in this text; read the last (each is its own run)"
        source = history.source.model_copy(update={"notes": [*history.source.notes, note]})
        history = history.model_copy(update={"source": source})
    return history


def read_table(header: list[str], rows: list[tuple[int, list[str]]], content: Content) -> History:
    """One table: the first column numbers epochs (from 0, so shifted to start at 1)."""
    builder = HistoryBuilder(FORMAT, content.path)
    offset = 1 if int(rows[0][1][0]) == 0 else 0
    names = [(n.series if (n := normalise(name)) else None) for name in header]
    accuracy_shown = "accuracy" in names
    for number, cells in rows:
        if len(cells) != len(header):
            builder.skip(
                f"line {number}: {len(cells)} cells for {len(header)} columns; row left out"
            )
            continue
        epoch = int(cells[0]) + offset
        for name, cell in zip(header[1:], cells[1:], strict=True):
            found = normalise(name)
            if found is None or not _numeric(cell):
                continue
            if not found.series.endswith("loss") and "valid" not in name.lower():
                name = "valid_" + name  # fastai's metrics are measured on the validation set
            builder.add(epoch, name, cell, where=f"line {number}")
            if found.series == "error_rate" and not accuracy_shown:
                builder.add(epoch, "valid_accuracy", 1.0 - float(cell), where=f"line {number}")
    if "error_rate" in names and not accuracy_shown:
        builder.note("val_accuracy: 1 - error_rate (fastai's error_rate is the validation error)")
    return builder.build()


def _numeric(cell: str) -> bool:
    try:
        return parse_number(cell) is not None
    except ValueError:
        return False


class _TableText(HTMLParser):
    """Rows of HTML tables as whitespace-separated lines (empty cells as ``#na#``)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip().replace(" ", "_") or "#na#")
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.lines.append("  ".join(self._row))
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_tables(html: str) -> str:
    """The rows of the HTML tables in the text, as whitespace-separated lines."""
    parser = _TableText()
    parser.feed(html)
    return "\n".join(parser.lines) + "\n" if parser.lines else ""
