"""Hugging Face ``Trainer`` state (``trainer_state.json``): a ``log_history`` list of
training logs (``loss``, ``grad_norm``, ``learning_rate`` every ``logging_steps``)
and evaluation logs (``eval_loss``, ``eval_accuracy`` ...), each with a fractional
``epoch`` and a ``step``.

The points of the History are the evaluations when they are at least as many as
the epochs (``eval_strategy="steps"``), else the epochs; training logs are
averaged over the steps up to each point.  The closing summary entry
(``train_runtime``, run-average ``train_loss``) is not a point of the curve.
"""

from __future__ import annotations

import bisect
import math

from advisor.readers.table import Content, HistoryBuilder
from advisor.schemas import History

FORMAT = "hf_trainer_state"
_PER_STEP = {"loss", "grad_norm"}  # averaged over the steps of a point


def sniff(content: Content) -> bool:
    """A JSON object with a ``log_history`` list."""
    data = content.json
    return isinstance(data, dict) and isinstance(data.get("log_history"), list)


def read(content: Content) -> History:
    """Bucket the logs into points (evaluations or epochs) and average per-step values."""
    builder = HistoryBuilder(FORMAT, content.path)
    content.note_cut(builder.skip)
    logs = []
    for index, entry in enumerate(content.json["log_history"]):
        if not isinstance(entry, dict):
            builder.skip(f"log_history[{index}]: not an object")
            continue
        if "train_runtime" in entry or "total_flos" in entry:
            continue  # the run summary: its train_loss is a run-wide average
        if not isinstance(entry.get("epoch"), (int, float)) and not isinstance(
            entry.get("step"), int
        ):
            builder.skip(f"log_history[{index}]: no epoch or step")
            continue
        logs.append((index, entry))
    evals = sorted({_position(e) for _, e in logs if any(k.startswith("eval_") for k in e)})
    epochs = sorted({max(1, math.ceil(_epoch(e) - 1e-9)) for _, e in logs})
    by_eval = len(evals) > len(epochs) and len(evals) >= 2
    for index, entry in logs:
        if by_eval:
            point = min(bisect.bisect_left(evals, _position(entry)), len(evals) - 1) + 1
        else:
            point = max(1, math.ceil(_epoch(entry) - 1e-9))
        for name, value in entry.items():
            if name in ("epoch", "step"):
                continue
            builder.add(
                point, name, value, where=f"log_history[{index}]", per_step=name in _PER_STEP
            )
    return builder.build()


def _epoch(entry: dict) -> float:
    value = entry.get("epoch")
    return float(value) if isinstance(value, (int, float)) else 0.0


def _position(entry: dict) -> float:
    """Where in training a log was written: its step, else its fractional epoch."""
    step = entry.get("step")
    return float(step) if isinstance(step, int) else _epoch(entry)
