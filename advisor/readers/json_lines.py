"""JSON Lines logs: one JSON object per line, as hand-written loops
(``{"epoch": 3, "train_loss": 0.52, "val_loss": 0.61}``), MMDetection's ``log.json``
(``"mode": "train"`` / ``"val"`` rows with ``epoch`` and ``iter``) and Detectron2's
``metrics.json`` (``iteration``, ``total_loss`` and its heads) write them.

With an ``epoch`` key, rows are grouped by epoch (fractional epochs to the epoch
they fall in; 0-based counts shifted to start at 1); a key logged several times
in an epoch is averaged.  A ``"mode": "val"`` row is the validation of its epoch.
Without epochs, each distinct ``iteration``/``step``/``iter`` value is one point
(a note says so).  Lines that are not JSON objects are skipped and listed.  The same
records saved as one JSON array (``json.dump(records, f)``) are read the same way.
"""

from __future__ import annotations

import json
import math

from advisor.contract.schemas import History
from advisor.readers.table import Content, HistoryBuilder

FORMAT = "json_lines"
_STEP_KEYS = ("iteration", "global_step", "step", "iter")
_VAL_MODES = {"val", "valid", "validation", "eval", "test"}


def _objects(text: str, limit: int | None = None) -> list[tuple[int, dict | None]]:
    rows: list[tuple[int, dict | None]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            value = None
        rows.append((number, value if isinstance(value, dict) else None))
        if limit is not None and len(rows) >= limit:
            break
    return rows


def _array_rows(data) -> list[tuple[int, dict | None]] | None:
    """The records of a JSON array of per-epoch objects (``[{"epoch": 1, "loss": 0.5}, ...]``),
    numbered from 1; None when the value is not such an array."""
    if not isinstance(data, list) or len(data) < 1:
        return None
    objects = [row for row in data if isinstance(row, dict)]
    if len(objects) < max(1, len(data) - 1) or not any(
        isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("epoch", *_STEP_KEYS)
        for row in objects[:20]
        for k, v in row.items()
    ):
        return None
    return [(n, row if isinstance(row, dict) else None) for n, row in enumerate(data, start=1)]


def sniff(content: Content) -> bool:
    """Several lines, each a JSON object holding a number; or a JSON array of such objects."""
    if isinstance(content.json, list):
        return _array_rows(content.json) is not None
    text = content.text
    if not text or text.lstrip()[:1] != "{" or isinstance(content.json, dict):
        return False
    rows = _objects(text[:200_000], limit=20)
    objects = [row for _, row in rows if row is not None]
    return (
        len(objects) >= 2
        and len(objects) >= len(rows) - 1
        and any(
            isinstance(v, (int, float)) and not isinstance(v, bool)
            for row in objects
            for v in row.values()
        )
    )


def read(content: Content) -> History:
    """Group the rows by epoch (or step) and average what was logged several times."""
    builder = HistoryBuilder(FORMAT, content.path)
    array = _array_rows(content.json)
    rows = []
    for number, row in array if array is not None else _objects(content.text or ""):
        if row is None:
            what = f"record {number}" if array is not None else f"line {number}"
            builder.skip(f"{what}: not a JSON object; left out")
        else:
            rows.append((number, row))
    with_epochs = [r for r in rows if _number(r[1].get("epoch")) is not None]
    if with_epochs:
        _by_epoch(with_epochs, builder)
    else:
        _by_step(rows, builder)
    return builder.build()


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _by_epoch(rows: list[tuple[int, dict]], builder: HistoryBuilder) -> None:
    epochs = [_number(row["epoch"]) for _, row in rows]
    whole = all(e == int(e) for e in epochs)  # type: ignore[arg-type]
    offset = 1 if whole and min(epochs) == 0 else 0  # type: ignore[type-var]
    counts: dict[tuple[str, int], int] = {}
    placed = []
    for (number, row), value in zip(rows, epochs, strict=True):
        epoch = int(value) + offset if whole else max(1, math.ceil(value - 1e-9))  # type: ignore[arg-type]
        prefix = "val_" if str(row.get("mode", "")).lower() in _VAL_MODES else ""
        placed.append((number, epoch, prefix, row))
        for key in row:
            counts[(prefix + key, epoch)] = counts.get((prefix + key, epoch), 0) + 1
    stepped = {key for (key, _), n in counts.items() if n > 1}
    for number, epoch, prefix, row in placed:
        for key, value in row.items():
            if key in ("epoch", "mode", *_STEP_KEYS) or isinstance(value, (dict, list, str)):
                continue
            builder.add(
                epoch, prefix + key, value, where=f"line {number}", per_step=prefix + key in stepped
            )
    if stepped:
        builder.note("values logged several times in an epoch: each epoch's is their mean")


def _by_step(rows: list[tuple[int, dict]], builder: HistoryBuilder) -> None:
    key = next((k for k in _STEP_KEYS if any(k in row for _, row in rows)), None)
    points: dict[float, int] = {}
    for position, (number, row) in enumerate(rows, start=1):
        step = _number(row.get(key)) if key else None
        point = points.setdefault(step, len(points) + 1) if step is not None else position
        prefix = "val_" if str(row.get("mode", "")).lower() in _VAL_MODES else ""
        for name, value in row.items():
            if name in ("mode", *_STEP_KEYS) or isinstance(value, (dict, list, str)):
                continue
            builder.add(point, prefix + name, value, where=f"line {number}")
    what = f"each logged {key}" if key else "each line"
    builder.note(f"no epochs in the log: {what} is one point")
