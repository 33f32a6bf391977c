"""Use what a run trained: ``advisor.load(run_dir)``, and the evaluate/predict/export commands.

``load(run_dir)`` returns a ``TrainedModel``: the run's plan, history and
preprocessing, and ``predict(x)`` / ``evaluate(x, y)`` on raw inputs (the
form the data source gives, before any scaling).  The network compiles once,
on the first call.  ``predict_files`` writes predictions for a file batch by batch;
the commands (``advisor.cli``) go through the same object and only print what it returns.
The engine (and so jax) is imported when a model is loaded, not before.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from advisor.contract.errors import InputError
from advisor.contract.schemas import Evaluation, History, Plan, Preprocessing


class TrainedModel:
    """A run's model, ready for new data.

    Attributes:
        plan: the plan as run.
        history: the run's per-epoch history.
        preprocessing: how raw inputs became model inputs (preprocessing.json).
        run_dir: the run folder.
    """

    def __init__(self, run_dir: str | Path):
        from engine.serving.predict import load_run

        self.run_dir = Path(run_dir)
        self._predictor = load_run(self.run_dir)
        self.plan: Plan = self._predictor.plan
        self.preprocessing: Preprocessing = self._predictor.preprocessing

    @property
    def history(self) -> History:
        from advisor.readers import load_history

        return load_history(self.run_dir / "history.json")

    def predict(self, x: np.ndarray):
        """Predictions for raw inputs ``x`` (one row per example): ``.classes``,
        ``.probabilities``, ``.values`` (regression), ``.boxes`` (detection)."""
        return self._predictor.predict(np.asarray(x))

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Loss and every metric of the task for raw inputs and their targets."""
        return self._predictor.evaluate(np.asarray(x), np.asarray(y))

    def evaluate_data(self, data: str) -> Evaluation:
        """``evaluate`` on data named as on the command line (builtin:NAME, .npz, .csv, folder)."""
        from engine.serving.inputs import read_labelled

        x, y = read_labelled(data, self.plan, self.preprocessing)
        metrics = self._predictor.evaluate_prepared(self._predictor.prepare(x, f"DATA {data}"), y)
        return Evaluation(
            run_dir=str(self.run_dir), data=data, n=len(y), task=self.plan.task, metrics=metrics
        )

    def export(self, output: str | Path) -> Path:
        """The forward pass as serialized StableHLO (any batch size, scaling inside): the file."""
        from engine.serving.export import export_run

        return export_run(self._predictor, Path(output))

    def __repr__(self) -> str:
        task, arch = self.plan.task, self.plan.model.arch
        return f"TrainedModel({str(self.run_dir)!r}, task={task!r}, arch={arch!r})"


def load(run_dir: str | Path) -> TrainedModel:
    """The model a run trained, from its folder.

    Raises:
        InputError: the folder is not a finished run (no plan, preprocessing or weights).

    Example:
        >>> model = load("runs/digits")  # doctest: +SKIP
        >>> model.predict(x).classes  # doctest: +SKIP
    """
    return TrainedModel(run_dir)


def load_exported(path: str | Path):
    """``f(x) -> outputs`` from an ``advisor export`` file: jax alone runs it, no model code."""
    from engine.serving.export import load_exported as _load

    return _load(path)


# ----------------------------------------------------------------------------- files


def predict_files(run_dir: Path, input_: str, output: Path, progress=None) -> int:
    """``advisor predict``: a prediction for every row of INPUT, into OUTPUT (.csv, .npy, .json).

    Batch by batch: each batch is read, predicted and written before the next
    is read, so memory holds one batch whatever the input's length.  ``progress``: a bar
    over rows for a long input (True, None on a terminal, or a bar factory,
    ``engine.outputs.progress``).  Returns the number of predictions written.
    """
    from engine.outputs.progress import bar_factory
    from engine.serving.inputs import read_unlabelled
    from engine.serving.predict import decode

    if output.suffix not in (".csv", ".npy", ".json"):
        raise InputError(f"-o: {output} must end in .csv, .npy or .json")
    model = load(run_dir)
    predictor = model._predictor
    inputs = read_unlabelled(input_, model.plan, model.preprocessing)
    if inputs.n == 0:
        raise InputError(f"INPUT: {input_} holds no examples")
    factory = bar_factory(progress) if inputs.n > predictor.batch_size else None
    size, task, names = predictor.batch_size, model.plan.task, model.preprocessing.class_names
    with (
        _rows_bar(factory, inputs.n) as advance,
        _PredictionWriter(output, inputs.n) as write,
    ):
        for start, batch in zip(range(0, inputs.n, size), inputs.batches(size), strict=True):
            outputs = predictor.outputs_of_batch(predictor.prepare(batch, f"INPUT {input_}"))
            write(decode(outputs, task, names), inputs.ids[start : start + len(batch)])
            advance(len(batch))
    return inputs.n


class _rows_bar:
    """``advance(n)`` over the rows predicted, drawn by the bar factory (none: nothing drawn)."""

    def __init__(self, factory, total: int):
        self.factory, self.total, self.done, self.bar = factory, total, 0, None

    def __enter__(self):
        if self.factory is None:
            return lambda n: None
        self.bar = self.factory("rows", self.total, 0)

        def advance(n: int) -> None:
            self.done += n
            self.bar.update(self.done, "")

        return advance

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


class _PredictionWriter:
    """Writes predictions batch by batch into a temporary file, renamed to OUTPUT at the end.

    A .npy is a memory map of the whole array (rows, classes or values); CSV
    and JSON get one record per row.  A failure leaves no OUTPUT behind.
    """

    def __init__(self, output: Path, n: int):
        self.output, self.n, self.done = output, n, 0
        self.tmp = output.with_name(f".{output.name}.partial")
        self.handle = self.array = self.csv = None

    def __enter__(self):
        self.output.parent.mkdir(parents=True, exist_ok=True)
        if self.output.suffix != ".npy":
            self.handle = self.tmp.open("w", newline="", encoding="utf-8")
            if self.output.suffix == ".json":
                self.handle.write("[")
        return self.write

    def write(self, predictions, ids: list) -> None:
        if self.output.suffix == ".npy":
            values = predictions.array()
            if self.array is None:
                self.array = np.lib.format.open_memmap(
                    self.tmp, mode="w+", dtype=np.float32, shape=(self.n, *values.shape[1:])
                )
            self.array[self.done : self.done + len(values)] = values
        elif self.output.suffix == ".json":
            for row in predictions.rows(ids):
                self.handle.write(("\n " if self.done == 0 else ",\n ") + json.dumps(row))
                self.done += 1
            return
        else:
            import csv

            rows = predictions.rows(ids)
            if self.csv is None:
                self.csv = csv.DictWriter(
                    self.handle, fieldnames=list(rows[0]), lineterminator="\n"
                )
                self.csv.writeheader()
            self.csv.writerows(rows)
        self.done += len(ids)

    def __exit__(self, kind, error, trace):
        if self.handle is not None:
            if self.output.suffix == ".json":
                self.handle.write("\n]\n")
            self.handle.close()
        if self.array is not None:
            self.array.flush()
            del self.array
        if kind is None:
            os.replace(self.tmp, self.output)
        else:
            self.tmp.unlink(missing_ok=True)
