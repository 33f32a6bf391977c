"""Use what a run trained: ``advisor.load(run_dir)``, and the evaluate/predict/export commands.

``load(run_dir)`` returns a ``TrainedModel``: the run's plan, history and
preprocessing, and ``predict(x)`` / ``evaluate(x, y)`` on raw inputs (the
form the data source gives, before any scaling).  The network compiles once,
on the first call.  The command bodies (``evaluate_files``, ``predict_files``,
``export_files``) go through the same object and only render what it returns.
The engine (and so jax) is imported when a model is loaded, not before.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from advisor.errors import InputError
from advisor.schemas import Evaluation, History, Plan, Preprocessing


class TrainedModel:
    """A run's model, ready for new data.

    Attributes:
        plan: the plan as run.
        history: the run's per-epoch history.
        preprocessing: how raw inputs became model inputs (preprocessing.json).
        run_dir: the run folder.
    """

    def __init__(self, run_dir: str | Path):
        from engine.predict import load_run

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
        from engine.inputs import read_labelled

        x, y = read_labelled(data, self.plan, self.preprocessing)
        metrics = self._predictor.evaluate_prepared(self._predictor.prepare(x, f"DATA {data}"), y)
        return Evaluation(
            run_dir=str(self.run_dir), data=data, n=len(y), task=self.plan.task, metrics=metrics
        )

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
    from engine.export import load_exported as _load

    return _load(path)


# ----------------------------------------------------------------------------- command bodies


def evaluate_files(run_dir: Path, data: str, as_json: bool) -> Evaluation:
    """``advisor evaluate``: print the metrics, or the Evaluation as JSON."""
    import click

    evaluation = load(run_dir).evaluate_data(data)
    if as_json:
        click.echo(evaluation.model_dump_json(indent=2))
    else:
        click.echo(f"{run_dir} on {data}: {evaluation.n} examples ({evaluation.task})")
        for name, value in evaluation.metrics.items():
            click.echo(f"  {name:<14} {value:.4f}")
    return evaluation


def predict_files(run_dir: Path, input_: str, output: Path, progress: bool | None = None) -> int:
    """``advisor predict``: a prediction for every row of INPUT, into OUTPUT (.csv, .npy, .json)."""
    import click

    from engine.inputs import read_unlabelled
    from engine.predict import decode

    if output.suffix not in (".csv", ".npy", ".json"):
        raise InputError(f"-o: {output} must end in .csv, .npy or .json")
    model = load(run_dir)
    predictor = model._predictor
    inputs = read_unlabelled(input_, model.plan, model.preprocessing)
    if inputs.n == 0:
        raise InputError(f"INPUT: {input_} holds no examples")
    show = sys.stdout.isatty() if progress is None else progress
    batches = (
        predictor.prepare(b, f"INPUT {input_}") for b in inputs.batches(predictor.batch_size)
    )
    with _progress(inputs.n, show and inputs.n > predictor.batch_size) as advance:
        outputs = predictor.outputs(batches, advance)
    predictions = decode(outputs, model.plan.task, model.preprocessing.class_names)
    _write_predictions(output, predictions, inputs.ids)
    click.echo(f"wrote {output}: {inputs.n} predictions ({model.plan.task})")
    return inputs.n


def _write_predictions(output: Path, predictions, ids: list) -> None:
    from advisor.io import write_atomic

    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".npy":
        np.save(output, predictions.array())
        return
    rows = predictions.rows(ids)
    if output.suffix == ".json":
        write_atomic(output, json.dumps(rows, indent=1) + "\n")
        return
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(output, buffer.getvalue())


class _progress:
    """A rich progress bar over rows, shown only when asked (a terminal and a long input)."""

    def __init__(self, total: int, show: bool):
        self.total, self.show, self.bar = total, show, None

    def __enter__(self):
        if not self.show:
            return lambda n: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("rows"), MofNCompleteColumn(), BarColumn(), TimeRemainingColumn()
        )
        task = self.bar.add_task("", total=self.total)
        self.bar.start()
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()


def export_files(run_dir: Path, output: Path) -> Path:
    """``advisor export``: the forward pass as serialized StableHLO, any batch size."""
    import click

    from engine.export import export_run

    model = load(run_dir)
    written = export_run(model._predictor, output)
    click.echo(
        f"wrote {written}: raw inputs [batch, {', '.join(map(str, model.plan.input_shape))}], "
        "scaling and weights inside"
    )
    return written
