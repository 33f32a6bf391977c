"""A trained run as a model: preprocess new inputs as the run did, predict, evaluate.

``Predictor(plan, variables, preprocessing)`` holds the network of a run and
one compiled forward pass over fixed-size batches (the last batch is padded,
so any number of rows compiles once).  ``load_run(run_dir)`` builds it from a
run folder: ``plan.json``, ``preprocessing.json`` and ``model.safetensors``.
``preprocessing_for(plan, scaling, ...)`` is what ``engine.run`` writes into
``preprocessing.json``: the scaling fitted on the training split, the class
names, the CSV columns, the image size.

The run's own test score (``engine.run``), ``advisor evaluate``, ``advisor
predict`` and ``advisor.load`` all go through ``Predictor``; the readers of
new data (files, folders, bundled sets) live in ``engine.serving.inputs``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from advisor.contract.errors import InputError
from advisor.contract.io import load_model
from advisor.contract.schemas import (
    BuiltinData,
    CsvData,
    ImageFolderData,
    NpzData,
    Plan,
    Preprocessing,
)
from engine.datasets.data import apply_scaling, encode_targets
from engine.nn.models import build_model
from engine.optim.losses import build_loss
from engine.optim.metrics import TASK_METRICS
from engine.runtime import compiler
from engine.training.train import make_metrics

# Rows per compiled forward call: big enough to keep the device busy, small enough for flat memory.
PREDICT_BATCH = 256
PREPROCESSING = "preprocessing.json"


def preprocessing_for(
    plan: Plan, scaling: dict, class_names, feature_names, categories=None
) -> Preprocessing:
    """What ``preprocessing.json`` records for a run of ``plan`` (the scaling as fitted)."""
    source = plan.data.source
    fields: dict = {
        "task": plan.task,
        "input_shape": list(plan.input_shape),
        "normalize": scaling.get("normalize", "none"),
        "n_classes": plan.n_classes,
        "class_names": class_names,
        "source_kind": source.kind,
    }
    if fields["normalize"] != "none":
        fields.update(
            stats_shape=scaling["shape"], shift=scaling["shift"], spread=scaling["spread"]
        )
    if isinstance(source, CsvData):
        fields.update(features=feature_names, target=source.target, categories=categories)
    elif isinstance(source, NpzData):
        fields.update(x_key=source.x_key, y_key=source.y_key)
    elif isinstance(source, ImageFolderData):
        fields.update(image_size=source.image_size, color_mode=source.color_mode)
    elif isinstance(source, BuiltinData):
        fields.update(
            image_size=source.image_size,
            builtin={
                "name": source.name,
                "classes": source.classes,
                "positive_class": source.positive_class,
            },
        )
    return Preprocessing(**fields)


def metric_names(task: str, n_classes: int | None, grid: int | None = None) -> list[str]:
    """Every metric of the task (top-5 accuracy only above five classes: below, it is always 1).

    A detector on a grid (several objects an image) is scored by mAP only.
    """
    names = list(TASK_METRICS.get(task, ()))
    if (n_classes or 0) <= 5:
        names = [n for n in names if n != "top5_accuracy"]
    if task == "detection" and grid:
        names = [n for n in names if n.startswith("map_")]
    return names


@dataclass(frozen=True)
class Predictions:
    """Per-row predictions, in the input's order (numpy arrays; None where the task has none)."""

    task: str
    classes: np.ndarray | None = None  # [N] class ids (binary, multiclass, detection)
    probabilities: np.ndarray | None = None  # [N, K] (multilabel: independent per label)
    values: np.ndarray | None = None  # [N, D] regression values
    boxes: np.ndarray | None = None  # [N, 4] detection boxes, x1 y1 x2 y2 in [0, 1]
    class_names: list[str] | None = None

    def __len__(self) -> int:
        first = next(a for a in (self.classes, self.probabilities, self.values) if a is not None)
        return len(first)

    def array(self) -> np.ndarray:
        """One array: class probabilities, regression values, or detection boxes + probabilities."""
        if self.task == "regression":
            return self.values
        if self.task == "detection":
            return np.concatenate([self.boxes, self.probabilities], axis=1)
        return self.probabilities

    def rows(self, ids: list | None = None) -> list[dict]:
        """One dict per row: id, class (and its name), probability per class, values or box."""
        names = self.class_names or [str(i) for i in range(self.array().shape[-1])]
        out = []
        for i in range(len(self)):
            row: dict = {"id": ids[i] if ids is not None else i}
            if self.boxes is not None:
                row.update(zip(("x1", "y1", "x2", "y2"), self.boxes[i].tolist(), strict=True))
            if self.classes is not None:
                row["class"] = int(self.classes[i])
                row["class_name"] = names[int(self.classes[i])] if self.class_names else None
            if self.task == "multilabel":
                row["labels"] = " ".join(
                    n for n, p in zip(names, self.probabilities[i], strict=True) if p > 0.5
                )
            if self.probabilities is not None:
                row.update(
                    {f"p_{n}": float(p) for n, p in zip(names, self.probabilities[i], strict=True)}
                )
            if self.values is not None:
                row.update(
                    {
                        f"value_{j}" if self.values.shape[1] > 1 else "value": float(v)
                        for j, v in enumerate(self.values[i])
                    }
                )
            out.append({k: v for k, v in row.items() if v is not None})
        return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis in numpy (no per-shape compile for eager jax ops)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def decode(outputs: np.ndarray, task: str, class_names: list[str] | None) -> Predictions:
    """Raw network outputs -> classes, probabilities or values, as the task reads them."""
    out = np.asarray(outputs, np.float32)
    if task == "detection" and out.ndim == 3:
        raise InputError(
            "RUN: the model finds several objects an image (model.grid); predict writes one "
            "row an image and does not list detections yet; advisor evaluate scores it (mAP)"
        )
    if task == "binary":
        positive = 1.0 / (1.0 + np.exp(-out[:, 0]))
        return Predictions(
            task,
            (out[:, 0] > 0).astype(np.int32),
            np.stack([1 - positive, positive], 1),
            class_names=class_names,
        )
    if task == "multiclass":
        probs = _softmax(out)
        return Predictions(task, out.argmax(-1).astype(np.int32), probs, class_names=class_names)
    if task == "multilabel":
        return Predictions(task, probabilities=1.0 / (1.0 + np.exp(-out)), class_names=class_names)
    if task == "detection":
        logits = out[:, 4:]
        probs = _softmax(logits)
        return Predictions(
            task,
            logits.argmax(-1).astype(np.int32),
            probs,
            boxes=out[:, :4],
            class_names=class_names,
        )
    return Predictions(task, values=out.reshape(len(out), -1))


class Predictor:
    """A run's network and weights, with one compiled forward pass over fixed-size batches."""

    def __init__(
        self,
        plan: Plan,
        variables: dict,
        preprocessing: Preprocessing,
        batch_size: int = PREDICT_BATCH,
        device: jax.Device | None = None,
    ):
        if plan.task == "gan":
            raise InputError(
                "task: a GAN run generates images; predict and evaluate take supervised runs"
            )
        device = device or jax.devices()[0]
        self.plan, self.preprocessing, self.batch_size = plan, preprocessing, batch_size
        # in the form engine.datasets.data.fit_scaling returns it
        self.scaling = {
            "normalize": preprocessing.normalize,
            "shift": preprocessing.shift,
            "spread": preprocessing.spread,
            "shape": preprocessing.stats_shape,
        }
        self.input_shape = tuple(plan.input_shape)
        impl = "cpu" if device.platform == "cpu" else "xla"
        network = build_model(plan.model, plan.input_shape, plan.task, impl=impl)
        self.network = network
        self.variables = jax.device_put(variables, device)

        @compiler.jit
        def forward(variables, x):
            return network.apply(variables, x, train=False, frozen_blocks=0)

        self.forward = forward
        self.metric_names = metric_names(plan.task, plan.n_classes, plan.model.grid)
        # the reported loss is the plain one: class weights are a training device, and
        # "balanced" weights need the training split's counts, which a saved run lacks
        loss_fn = build_loss(plan.loss.model_copy(update={"class_weights": None}))
        metrics_fn = make_metrics(self.metric_names, plan.task)
        task, loss_name, k = plan.task, plan.loss.name, plan.n_classes

        @compiler.jit
        def score(outputs, y):
            losses = loss_fn(outputs, encode_targets(y, task, loss_name, k))
            return {"loss": jnp.mean(losses), **metrics_fn(outputs, y)}

        self.score = score

    # ------------------------------------------------------------------ inputs

    def prepare(self, x: np.ndarray, where: str = "x") -> np.ndarray:
        """Raw inputs -> the model's inputs: the run's shape and scaling (float32)."""
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.number):
            raise InputError(f"{where}: inputs are {x.dtype}; expected numbers")
        have = tuple(x.shape[1:])
        if have != self.input_shape:
            if int(np.prod(have)) != int(np.prod(self.input_shape)):
                raise InputError(
                    f"{where}: examples of shape {list(have)}; the run's model takes "
                    f"{list(self.input_shape)} (the run folder's preprocessing.json)"
                )
            x = x.reshape(len(x), *self.input_shape)
        return apply_scaling(x.astype(np.float32), self.scaling)

    # ------------------------------------------------------------------ outputs

    def outputs_of_batch(self, x: np.ndarray) -> np.ndarray:
        """The network's outputs for up to ``batch_size`` prepared rows (padded to a full batch)."""
        n = len(x)
        if n < self.batch_size:
            x = np.concatenate([x, np.repeat(x[-1:], self.batch_size - n, axis=0)])
        return np.asarray(self.forward(self.variables, x))[:n]

    def outputs(
        self, batches: Iterable[np.ndarray], on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Outputs for prepared batches (at most ``batch_size`` rows each), in order."""
        parts = []
        for batch in batches:
            parts.append(self.outputs_of_batch(batch))
            if on_batch is not None:
                on_batch(len(batch))
        if not parts:
            raise InputError("INPUT: holds no examples")
        return np.concatenate(parts)

    def batches(self, x: np.ndarray) -> Iterator[np.ndarray]:
        """Prepared batches of raw ``x``, cut before scaling so memory stays one batch wide."""
        for start in range(0, len(x), self.batch_size):
            yield self.prepare(x[start : start + self.batch_size])

    def predict(self, x: np.ndarray) -> Predictions:
        """Classes, probabilities or values for raw inputs ``x``, one per row in order."""
        return decode(self.outputs(self.batches(x)), self.plan.task, self.preprocessing.class_names)

    def evaluate_prepared(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Loss and every metric of the task on prepared inputs and raw targets."""
        outputs = self.outputs(
            x[s : s + self.batch_size] for s in range(0, len(x), self.batch_size)
        )
        return {k: float(v) for k, v in jax.device_get(self.score(outputs, np.asarray(y))).items()}

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Loss and every metric of the task on raw inputs and targets (as a source gives them)."""
        from engine.datasets.data import check_targets

        if len(x) != len(y):
            raise InputError(f"y: {len(y)} targets for {len(x)} inputs; expected one each")
        return self.evaluate_prepared(self.prepare(x), check_targets(np.asarray(y), self.plan))


def load_run(run_dir: str | Path, batch_size: int = PREDICT_BATCH) -> Predictor:
    """The Predictor of a run folder (plan.json, preprocessing.json, model.safetensors).

    Raises:
        InputError: naming the file when the folder is not a finished run.
    """
    from engine.outputs.checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    expected = "expected a run directory written by advisor run"
    if not (run_dir / "plan.json").exists():
        raise InputError(f"RUN: {run_dir / 'plan.json'} does not exist; {expected}")
    if load_model(Plan, run_dir / "plan.json").task == "gan":
        raise InputError(
            f"RUN: {run_dir} trained a GAN; evaluate, predict and export take supervised runs"
        )
    if not (run_dir / PREPROCESSING).exists():
        raise InputError(
            f"RUN: {run_dir / PREPROCESSING} does not exist; {expected} "
            "(a run from before preprocessing.json was recorded needs running again)"
        )
    plan = load_model(Plan, run_dir / "plan.json")
    preprocessing = load_model(Preprocessing, run_dir / PREPROCESSING)
    variables, _ = load_checkpoint(run_dir, field="RUN")
    return Predictor(plan, variables, preprocessing, batch_size)
