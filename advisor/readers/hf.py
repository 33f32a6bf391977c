"""Hugging Face ``Trainer`` state (``trainer_state.json``): a ``log_history`` list of
training logs (``loss``, ``grad_norm``, ``learning_rate`` every ``logging_steps``)
and evaluation logs (``eval_loss``, ``eval_accuracy`` ...), each with a fractional
``epoch`` and a ``step``.

Each log belongs to the epoch it was written in (epoch 2.25 to epoch 3); per-step
values (``loss``, ``grad_norm``) are averaged over the epoch, an evaluation is the
epoch's value (the last one when there were several).  When training stopped inside
an epoch (a final epoch of 2.5), that last epoch is kept and noted as partial.  The
closing summary entry (``train_runtime``, run-average ``train_loss``) is not a point
of the curve.  A bare list of such log records (``trainer.state.log_history`` saved on
its own) is read the same way.
"""

from __future__ import annotations

import math

from advisor.contract.schemas import History
from advisor.readers.table import Content, HistoryBuilder

FORMAT = "hf_trainer_state"
_PER_STEP = {"loss", "grad_norm"}  # averaged over the steps of a point


def sniff(content: Content) -> bool:
    """A JSON object with a ``log_history`` list, or such a list on its own."""
    data = content.json
    if isinstance(data, dict):
        return isinstance(data.get("log_history"), list)
    return _is_log_list(data)


def _is_log_list(data) -> bool:
    """A list of log records: every one an object with an integer ``step``, some with a loss."""
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(e, dict) and isinstance(e.get("step"), int) for e in data)
        and any("loss" in e or "eval_loss" in e for e in data)
    )


def _log_history(data) -> list:
    return data if isinstance(data, list) else data["log_history"]


def read(content: Content) -> History:
    """Bucket the logs into points (evaluations or epochs) and average per-step values."""
    builder = HistoryBuilder(FORMAT, content.path)
    content.note_cut(builder.skip)
    logs = []
    for index, entry in enumerate(_log_history(content.json)):
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
    evaluations: dict[int, int] = {}
    for index, entry in logs:
        point = max(1, math.ceil(_epoch(entry) - 1e-9))
        if any(k.startswith("eval_") for k in entry):
            evaluations[point] = evaluations.get(point, 0) + 1
        for name, value in entry.items():
            if name in ("epoch", "step"):
                continue
            builder.add(
                point, name, value, where=f"log_history[{index}]", per_step=name in _PER_STEP
            )
    several = sorted(e for e, n in evaluations.items() if n > 1)
    if several:
        builder.note(
            f"several evaluations in an epoch (epochs {several[0]}-{several[-1]}): "
            "each epoch's evaluation values are its last"
        )
    final = _final_epoch(content.json, logs)
    if final is not None and final - math.floor(final) > 0.01:
        builder.note(
            f"epoch {math.ceil(final)} is partial: training stopped at epoch {final:g}; "
            "its values are the mean of the steps logged in it"
        )
    return builder.build()


def _final_epoch(state: dict, logs: list[tuple[int, dict]]) -> float | None:
    """Where training stopped: the state's ``epoch``, else the last log's."""
    value = state.get("epoch") if isinstance(state, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return max((_epoch(entry) for _, entry in logs), default=None)


def _epoch(entry: dict) -> float:
    value = entry.get("epoch")
    return float(value) if isinstance(value, (int, float)) else 0.0
