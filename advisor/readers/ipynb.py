"""Jupyter notebooks (``.ipynb``): the training output printed in their cells.

The notebook is JSON; each code cell keeps its outputs: ``stream`` text (Keras'
``Epoch 1/10 ... loss: ...`` lines, plain prints, logging), ``execute_result`` and
``display_data`` (``text/plain``, and fastai's training table as ``text/html``).
Each cell's output text is read with the text readers (fastai's table first, then
the log reader).  A cell whose epoch count starts again (a second ``fit``) holds a
second run.  Runs are never merged: ``read_all`` gives one History per run, named
``cell N`` (``cell N run K`` for the K-th run of a cell); ``read`` gives the last
run, with a note naming the others.
"""

from __future__ import annotations

from typing import Any

from advisor.contract.errors import InputError
from advisor.contract.schemas import History
from advisor.readers import fastai_table, text_log
from advisor.readers.table import Content

FORMAT = "ipynb"


def sniff(content: Content) -> bool:
    """A JSON object with a ``cells`` list and an ``nbformat`` number."""
    data = content.json
    return isinstance(data, dict) and isinstance(data.get("cells"), list) and "nbformat" in data


def read(content: Content) -> History:
    """The notebook's last training run (a note names the others)."""
    runs = read_all(content)
    name, history = list(runs.items())[-1]
    if len(runs) > 1:
        others = ", ".join(list(runs)[:-1])
        note = (
            f"the notebook holds {len(runs)} training runs; read the last ({name}); the others "
            f"({others}) are diagnosed one by one with advisor diagnose (or load_histories)"
        )
        source = history.source.model_copy(update={"notes": [*history.source.notes, note]})
        history = history.model_copy(update={"source": source})
    return history


def read_all(content: Content) -> dict[str, History]:
    """One History per training run found in the cells' output, in notebook order.

    Raises:
        InputError: no cell printed a training history.
    """
    runs: dict[str, History] = {}
    for index, cell in enumerate(content.json.get("cells", []), start=1):
        if not isinstance(cell, dict):
            continue
        text = _output_text(cell.get("outputs"))
        if not text.strip():
            continue
        found = _runs_in(text, content)
        for number, (how, history) in enumerate(found, start=1):
            name = f"cell {index}" if len(found) == 1 else f"cell {index} run {number}"
            notes = [f"read from the output of {name} ({how})", *history.source.notes]
            source = history.source.model_copy(
                update={"format": FORMAT, "path": content.label, "notes": notes, "run": name}
            )
            runs[name] = history.model_copy(update={"source": source})
    if not runs:
        raise InputError(
            f"{content.label}: no training output in this notebook's cells; expected Keras "
            "'Epoch N/M ... loss: x' lines, a fastai table or printed 'epoch N loss: x' lines"
        )
    return runs


def _runs_in(text: str, content: Content) -> list[tuple[str, History]]:
    """(reader, History) for each run printed in one cell's output."""
    tables = fastai_table.tables(text)
    if tables:
        return [
            (fastai_table.FORMAT, history)
            for header, rows in tables
            if (history := _quiet(lambda h=header, r=rows: fastai_table.read_table(h, r, content)))
        ]
    found = []
    for part in text_log.split_runs(text):
        cell = Content(None, part.encode())
        if text_log.sniff_printed(part):
            history = _quiet(lambda c=cell: text_log.read(c))
            if history is not None:
                found.append((text_log.FORMAT, history))
    return found


def _quiet(read_one) -> History | None:
    """The History, or None when that output holds no usable series."""
    try:
        return read_one()
    except InputError:
        return None


def _output_text(outputs: Any) -> str:
    """The text of a cell's outputs: streams, plain-text results, HTML tables as text."""
    if not isinstance(outputs, list):
        return ""
    parts = []
    for output in outputs:
        if not isinstance(output, dict):
            continue
        if output.get("output_type") == "stream":
            parts.append(_joined(output.get("text")))
            continue
        data = output.get("data")
        if not isinstance(data, dict):
            continue
        html = _joined(data.get("text/html"))
        table = fastai_table.html_tables(html) if "<table" in html else ""
        parts.append(table or _joined(data.get("text/plain")))
    return "\n".join(part if part.endswith("\n") else part + "\n" for part in parts if part)


def _joined(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else ""
