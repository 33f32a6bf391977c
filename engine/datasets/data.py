"""The data a plan trains on: load, split, scale; then batches cut inside jit.

``load_data(plan, base_dir)`` reads the plan's ``data.source`` (a bundled or
generated dataset, an ``.npz``, a CSV table or an image folder), keeps the
classes and subsample asked for, splits train/validation with ``split_seed``
(stratified for classification), and fits the input scaling on the training
split only.  Targets stay in one raw form per task — class ids (int32) for
binary and multiclass, 0/1 rows for multilabel, float rows for regression,
``[x1, y1, x2, y2, class]`` for detection — and ``encode_targets`` turns them
into what the loss expects inside the compiled step.

``epoch_batches`` cuts an epoch on the device: a permutation from
``fold_in(key, epoch)``, padded to whole batches with a mask, so every example
counts exactly once per epoch.  The file readers and generators live in
``engine.datasets.sources``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from advisor.contract.errors import InputError
from advisor.contract.schemas import Plan
from engine.datasets import sources

CLASS_TASKS = ("binary", "multiclass")


@dataclass(frozen=True)
class Dataset:
    """Train and validation arrays (host memory, float32 inputs) and what they mean."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    input_shape: tuple[int, ...]
    n_classes: int | None
    class_names: list[str] | None = None
    scaling: dict = field(default_factory=dict)
    # The held-out test split (scaled like the rest), or None: never trained or selected on.
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    feature_names: list[str] | None = None
    # tables: text feature column -> its values, coded by position (preprocessing.json)
    categories: dict[str, list[str]] | None = None

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    @property
    def n_val(self) -> int:
        return len(self.x_val)


def load_data(plan: Plan, base_dir: str | Path = ".") -> Dataset:
    """The plan's data, split and scaled; raises InputError naming the plan field on bad data.

    The split happens in this order: the test split first (``data.test_fraction``,
    or all of ``data.test``), then validation from what is left, then the
    training subsample.  Scaling is fitted on the training split alone.
    """
    source = plan.data.source
    if source is None:
        raise InputError(
            "data.source: the plan names no data, so it cannot run; "
            "add data.source (a builtin dataset, an .npz, a CSV or an image folder)"
        )
    base_dir = Path(base_dir)
    raw = sources.read_source(source, plan, base_dir)
    x, y = _prepared(raw, plan)
    train_idx, val_idx, test_idx = split_rows(y, plan)
    x_test = y_test = None
    if test_idx is not None:
        x_test, y_test = x[test_idx], y[test_idx]
    elif plan.data.test is not None:
        test_source = plan.data.test
        if raw.categories and getattr(test_source, "kind", None) == "csv":
            # the test table's text columns coded as the training table's
            test_source = test_source.model_copy(update={"categories": raw.categories})
        test_raw = sources.read_source(test_source, plan, base_dir)
        test_raw = align_classes(test_raw, raw.class_names, "data.test")
        x_test, y_test = _prepared(test_raw, plan)
    if raw.subsample is not None:
        train_idx = subsample(train_idx, y, plan.task, raw.subsample, plan.data.split_seed)
    scaling = fit_scaling(x[train_idx], plan.data.normalize, plan.modality)
    return Dataset(
        x_train=apply_scaling(x[train_idx], scaling),
        y_train=y[train_idx],
        x_val=apply_scaling(x[val_idx], scaling),
        y_val=y[val_idx],
        input_shape=tuple(plan.input_shape),
        n_classes=plan.n_classes,
        class_names=raw.class_names,
        scaling=scaling,
        x_test=None if x_test is None else apply_scaling(x_test, scaling),
        y_test=y_test,
        feature_names=raw.feature_names,
        categories=raw.categories,
    )


# Offset of the test split's seed from split_seed, so the two draws are independent.
TEST_SEED_OFFSET = 7919


def split_rows(y: np.ndarray, plan: Plan) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(train, validation, test or None) row indices of targets ``y``, as the plan splits them.

    The test split first (``data.test_fraction``), then validation from what is
    left; the in-memory and the streamed paths both split here, so they hold the
    same rows.
    """
    rest = np.arange(len(y))
    test_idx = None
    if plan.data.test_fraction > 0:
        rest, test_idx = split_indices(
            y,
            plan.task,
            plan.data.test_fraction,
            plan.data.split_seed + TEST_SEED_OFFSET,
            "data.test_fraction",
        )
    # the validation share is of the whole source, so it stays the same with or without a test split
    val_share = plan.data.val_fraction / (1.0 - plan.data.test_fraction)
    train_pos, val_pos = split_indices(y[rest], plan.task, val_share, plan.data.split_seed)
    return rest[train_pos], rest[val_pos], test_idx


def class_counts(y: np.ndarray, n_classes: int | None) -> tuple[int, ...] | None:
    """Training examples per class for class-id targets (the loss's class weights); else None."""
    if not n_classes or np.ndim(y) != 1:
        return None
    ids = np.asarray(y).astype(np.int64)
    return tuple(int(c) for c in np.bincount(ids, minlength=n_classes))


def check_finite(x: np.ndarray, y: np.ndarray) -> None:
    """InputError when inputs or targets hold NaN or infinities (run before any scaling)."""
    for name, array in (("inputs", x), ("targets", y)):
        if not np.issubdtype(np.asarray(array).dtype, np.number):
            continue
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise InputError(
                f"data.source: the {name} hold {bad} NaN or infinite values; "
                "fill or drop those examples before training"
            )


def _prepared(raw: sources.Raw, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """Inputs as float32 in the plan's shape and targets in the task's raw form."""
    x = raw.x.astype(np.float32)
    check_finite(x, raw.y)
    return _fit_shape(x, plan), check_targets(raw.y, plan)


def align_classes(raw: sources.Raw, names: list[str] | None, field_name: str) -> sources.Raw:
    """``raw`` with its class ids renumbered to ``names`` (text labels, image sub-folders).

    A second source names its classes by what it holds, so the same name can
    have another id there; the model's ids are the training source's.

    Raises:
        InputError: a class of ``raw`` that the training data never had.
    """
    if raw.class_names is None or names is None or raw.class_names == names:
        return raw
    unknown = [n for n in raw.class_names if n not in names]
    if unknown:
        raise InputError(
            f"{field_name}: classes {unknown} were not in the training data; "
            f"expected some of {', '.join(names)}"
        )
    remap = np.array([names.index(n) for n in raw.class_names], np.int32)
    return dataclasses.replace(raw, y=remap[np.asarray(raw.y, np.int64)], class_names=list(names))


def _fit_shape(x: np.ndarray, plan: Plan) -> np.ndarray:
    """Inputs in the plan's input_shape when only the layout differs (digits: [64] or [8, 8, 1])."""
    want = tuple(plan.input_shape)
    have = x.shape[1:]
    if have == want:
        return x
    if math.prod(have) == math.prod(want):
        return x.reshape(len(x), *want)
    raise InputError(
        f"input_shape: the plan says {list(want)} but the data has examples of shape {list(have)}; "
        "set input_shape to the data's shape (or data.source.image_size to resize images)"
    )


def check_targets(y: np.ndarray, plan: Plan) -> np.ndarray:
    """Targets in the engine's raw form for the task; labels out of range are an InputError."""
    task, k = plan.task, plan.n_classes
    if task in CLASS_TASKS:
        y = np.asarray(y).reshape(len(y), -1)
        if y.shape[1] > 1:  # one-hot rows -> class ids
            y = np.argmax(y, axis=1)
        y = y.reshape(-1)
        if not np.all(np.isfinite(y.astype(np.float64))) or not np.all(np.equal(np.mod(y, 1), 0)):
            raise InputError(
                f"n_classes: the targets are not class ids; expected integers 0..{k - 1}"
            )
        y = y.astype(np.int32)
        if y.min() < 0 or y.max() >= k:
            raise InputError(
                f"n_classes: the labels run from {y.min()} to {y.max()} but n_classes is {k}; "
                f"expected labels 0..{k - 1}"
            )
        return y
    if task == "multilabel":
        y = np.asarray(y, np.float32).reshape(len(y), -1)
        if y.shape[1] != k:
            raise InputError(
                f"n_classes: multilabel targets have {y.shape[1]} columns; expected {k}"
            )
        return y
    if task == "detection" and (plan.model.grid or np.ndim(y) == 3):
        return _check_box_sets(np.asarray(y, np.float32), plan)
    if task == "detection":
        y = np.asarray(y, np.float32).reshape(len(y), -1)
        if y.shape[1] != 5:
            raise InputError(
                "data.source: detection targets need 5 columns (x1, y1, x2, y2, class)"
            )
        labels = y[:, 4]
        whole = np.all(np.isfinite(labels)) and np.all(labels == np.floor(labels))
        if not whole or labels.min() < 0:
            raise InputError(
                f"data.source: detection class ids must be whole numbers 0..{k - 1}; "
                "the fifth target column holds a negative, fractional or missing one"
            )
        if labels.max() >= k:
            raise InputError(
                f"n_classes: detection labels reach {int(labels.max())}; expected 0..{k - 1}"
            )
        return y
    y = np.asarray(y, np.float32)
    return y.reshape(len(y), -1) if y.ndim == 1 else y


def _check_box_sets(y: np.ndarray, plan: Plan) -> np.ndarray:
    """Several objects an image: ``[N, M, 6]`` rows x1, y1, x2, y2, class, valid (0/1)."""
    k = plan.n_classes
    if not plan.model.grid:
        raise InputError(
            "model.grid: the targets hold several boxes an image ([N, M, 6]); "
            "set label_encoding 'box_sets' in the profile so the plan predicts on a grid"
        )
    if y.ndim != 3 or y.shape[2] != 6:
        raise InputError(
            f"data.source: targets of shape {list(y.shape)}; several objects an image need "
            "[N, M, 6] rows (x1, y1, x2, y2, class, valid), padding rows with valid 0"
        )
    valid = y[..., 5]
    if not np.all(np.isin(valid, (0.0, 1.0))):
        raise InputError("data.source: the valid column (the sixth) must be 0 or 1 in every row")
    real = y[valid == 1.0]
    labels = real[:, 4]
    if (
        not np.all(np.isfinite(real))
        or not np.all(labels == np.floor(labels))
        or (len(labels) and labels.min() < 0)
    ):
        raise InputError(
            f"data.source: detection class ids must be whole numbers 0..{k - 1}; "
            "a valid row holds a negative, fractional or missing one"
        )
    if len(labels) and labels.max() >= k:
        raise InputError(
            f"n_classes: detection labels reach {int(labels.max())}; expected 0..{k - 1}"
        )
    boxes = real[:, :4]
    if np.any(boxes < 0) or np.any(boxes > 1) or np.any(boxes[:, 2:] <= boxes[:, :2]):
        raise InputError(
            "data.source: boxes must be x1 < x2, y1 < y2 inside [0, 1] (fractions of the image)"
        )
    return y


def split_indices(
    y: np.ndarray, task: str, val_fraction: float, seed: int, field_name: str = "data.val_fraction"
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (kept, held-out) indices; stratified per class for binary/multiclass/detection."""
    rng = np.random.default_rng(seed)
    n = len(y)
    if task in CLASS_TASKS or (task == "detection" and np.ndim(y) == 2):
        labels = y[:, 4].astype(np.int64) if task == "detection" else y
        val = []
        for c in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == c))
            # at least one held-out example for every class with two or more
            n_val = int(round(val_fraction * len(members)))
            n_val = min(max(n_val, 1 if len(members) > 1 else 0), len(members) - 1)
            val.append(members[:n_val])
        val_idx = np.sort(np.concatenate(val))
    else:
        val_idx = np.sort(rng.permutation(n)[: max(1, int(round(val_fraction * n)))])
    train_mask = np.ones(n, bool)
    train_mask[val_idx] = False
    train_idx = np.flatnonzero(train_mask)
    if len(train_idx) == 0:
        raise InputError(f"{field_name}: leaves no training example; lower it")
    return train_idx, val_idx


def subsample(
    train_idx: np.ndarray, y: np.ndarray, task: str, n_keep: int, seed: int
) -> np.ndarray:
    """Keep ``n_keep`` training examples, drawn with the split seed (stratified for classes)."""
    if n_keep >= len(train_idx):
        return train_idx
    fraction = 1.0 - n_keep / len(train_idx)
    keep_pos, _ = split_indices(y[train_idx], task, fraction, seed + 1)
    return train_idx[keep_pos]


def fit_scaling(x_train: np.ndarray, mode: str, modality: str) -> dict:
    """Input scaling fitted on the training split: per feature (tables) or per channel (others).

    Returns ``{"normalize", "shift", "spread", "shape"}`` (flat lists and the
    shape they broadcast in), what ``apply_scaling`` and ``preprocessing.json`` use.
    """
    if mode == "none":
        return {"normalize": "none"}
    axes = (0,) if modality == "tabular" else tuple(range(x_train.ndim - 1))
    if mode == "standardize":
        shift = x_train.mean(axis=axes, keepdims=True)
        spread = x_train.std(axis=axes, keepdims=True)
    else:  # scale_01
        shift = x_train.min(axis=axes, keepdims=True)
        spread = x_train.max(axis=axes, keepdims=True) - shift
    spread = np.where(spread > 0, spread, 1.0).astype(np.float32)  # constant features stay put
    return {
        "normalize": mode,
        "shift": shift.astype(np.float32).ravel().tolist(),
        "spread": spread.ravel().tolist(),
        "shape": list(shift.shape),
    }


def apply_scaling(x: np.ndarray, scaling: dict) -> np.ndarray:
    """``x`` scaled as ``fit_scaling`` measured (float32)."""
    if scaling.get("normalize", "none") == "none":
        return x.astype(np.float32)
    shape = scaling["shape"]
    shift = np.asarray(scaling["shift"], np.float32).reshape(shape)
    spread = np.asarray(scaling["spread"], np.float32).reshape(shape)
    return ((x - shift) / spread).astype(np.float32)


def scale_splits(
    x_train: np.ndarray, x_val: np.ndarray, mode: str, modality: str
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Both sets scaled as the training set asks (``fit_scaling``), and the scaling."""
    scaling = fit_scaling(x_train, mode, modality)
    return apply_scaling(x_train, scaling), apply_scaling(x_val, scaling), scaling


# ----------------------------------------------------------------------------- inside jit


def encode_targets(y: jax.Array, task: str, loss_name: str, n_classes: int | None) -> jax.Array:
    """Raw targets -> what the loss reads: [B, 1] 0/1 for binary, ids or one-hot for multiclass."""
    if task == "binary":
        return y.astype(jnp.float32)[:, None]
    if task == "multiclass":
        if loss_name == "sparse_categorical_crossentropy":
            return y
        return jax.nn.one_hot(y, n_classes, dtype=jnp.float32)
    return y


def steps_for(n: int, batch_size: int) -> tuple[int, int]:
    """(steps per epoch, examples per step); a batch at least as large as n is one full batch."""
    if batch_size >= n:
        return 1, n
    return -(-n // batch_size), batch_size


def epoch_batches(
    key: jax.Array, epoch: jax.Array, n: int, batch_size: int, shuffle: bool = True
) -> tuple[jax.Array, jax.Array]:
    """Indices [steps, batch] and a 0/1 mask for one epoch, cut on the device.

    The order is a permutation drawn from ``fold_in(key, epoch)``; the last batch
    is padded with the first examples again and masked out, so each example
    counts once.  Because the padding is at the end, the first ``n`` flattened
    positions are the whole epoch, each example once.
    """
    steps, size = steps_for(n, batch_size)
    order = jax.random.permutation(jax.random.fold_in(key, epoch), n) if shuffle else jnp.arange(n)
    pad = steps * size - n
    if pad:
        order = jnp.concatenate([order, order[:pad]])
    mask = (jnp.arange(steps * size) < n).astype(jnp.float32)
    return order.reshape(steps, size), mask.reshape(steps, size)
