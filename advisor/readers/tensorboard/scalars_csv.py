"""Scalars exported in long form, one row per (tag, step, value): TensorBoard scalars
pulled into a CSV by a script (``filename,tag,step,value``; ``run,tag,step,value``;
with or without ``wall_time``).

Each tag becomes a series named by ``normalise`` (``train/tot_loss`` -> ``loss``);
there are no epochs, so every distinct step is one point, in order, and the notes
say so.  A row written twice (same tag, step and value) counts once.  A run column
(``filename``, ``run``) with several values gives one history per run, never a merge.
"""

from __future__ import annotations

from advisor.contract.schemas import History
from advisor.readers.table import (
    Content,
    HistoryBuilder,
    csv_rows,
    last_run,
    parse_number,
    sniff_csv,
)

FORMAT = "tensorboard"

_TAG = ("tag", "metric", "name", "key")
_STEP = ("step", "global_step", "iteration")
_RUN = ("filename", "file", "run", "source")


def _columns(header: list[str]) -> tuple[str, str, str, str | None] | None:
    """(tag, step, value, run) column names of a long-form header, else None."""
    lower = {h.lower(): h for h in header}
    tag = next((lower[n] for n in _TAG if n in lower), None)
    step = next((lower[n] for n in _STEP if n in lower), None)
    value = lower.get("value")
    if tag is None or step is None or value is None:
        return None
    return tag, step, value, next((lower[n] for n in _RUN if n in lower), None)


def sniff(content: Content) -> bool:
    """A table with a tag column, a step column and a value column."""
    found = sniff_csv(content.text)
    return found is not None and _columns(found[1]) is not None


def read(content: Content) -> History:
    """The file's run (its last, with a note, when the run column names several)."""
    runs = read_all(content)
    return last_run(runs, "the file holds {n} runs (its run column)")


def read_all(content: Content) -> dict[str, History]:
    """One History per run: each tag a series, each distinct step one point."""
    delimiter, header = sniff_csv(content.text)  # type: ignore[misc]
    tag, step, value, run = _columns(header)  # type: ignore[misc]
    skipped = HistoryBuilder(FORMAT, content.path)
    by_run: dict[str, dict[tuple[str, float], tuple[int, str]]] = {}
    for line, row in csv_rows(content.text or "", delimiter, skipped):
        try:
            at = parse_number(row.get(step))
        except ValueError:
            at = None
        if at is None or not row.get(tag):
            skipped.skip(f"line {line}: no tag or no step number; row left out")
            continue
        points = by_run.setdefault(row.get(run, "") if run else "", {})
        points.setdefault((row[tag], at), (line, row.get(value, "")))
    runs: dict[str, History] = {}
    for number, (name, points) in enumerate(by_run.items(), start=1):
        builder = HistoryBuilder(FORMAT, content.path)
        for message in skipped.skipped:
            builder.skip(message)
        steps = sorted({at for _, at in points})
        index = {at: position for position, at in enumerate(steps, start=1)}
        for (series, at), (line, cell) in points.items():
            builder.add(index[at], series, cell, where=f"line {line}")
        builder.note(
            f"no epochs in the export: each of the {len(steps)} logged steps "
            f"({steps[0]:g} to {steps[-1]:g}) is one point; a row repeated with the same "
            "step counts once"
        )
        history = builder.build()
        label = (
            f"run {number}"
            if len(by_run) > 1
            else (content.path.name if content.path else "history")
        )
        if len(by_run) > 1:
            source = history.source.model_copy(update={"run": name or label})
            history = history.model_copy(update={"source": source})
        runs[label] = history
    return runs
