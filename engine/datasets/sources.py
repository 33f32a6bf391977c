"""Where examples come from: bundled datasets, generated shapes, .npz, CSV, image folders.

``read_source(source, plan, base_dir) -> Raw`` returns every example of one
source as numpy arrays, before any split or scaling (``engine.datasets.data`` does
those).  Bundled datasets ship inside scikit-learn (digits, iris, wine,
breast_cancer, diabetes); ``shapes`` and ``shapes_detection`` are drawn from the
data section's ``split_seed``, and ``digits_attributes``/``digits_detection`` are
derived from digits (``engine.datasets.digit_sets``), so a plan names its data completely and nothing
is downloaded.  Every failure is an InputError naming the plan field.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from advisor.contract.errors import InputError
from advisor.contract.inputs import (
    MAX_DATA_BYTES,
    checked_file,
    checked_folder,
    confine,
    data_root,
)
from advisor.contract.schemas import BuiltinData, CsvData, ImageFolderData, NpzData, Plan

SHAPE_NAMES = ("circle", "square", "triangle", "cross")
# Datasets derived from scikit-learn's digits by engine.datasets.digit_sets.
DERIVED_DIGITS = ("digits_attributes", "digits_detection")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass(frozen=True)
class Raw:
    """All examples of a source: inputs, raw targets, class names, training subsample."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str] | None = None
    subsample: int | None = None
    feature_names: list[str] | None = None
    categories: dict[str, list[str]] | None = None  # text feature column -> values, by code


def read_source(source, plan: Plan, base_dir: Path) -> Raw:
    """Dispatch on the source kind."""
    if isinstance(source, BuiltinData):
        return read_builtin(source, plan)
    path = Path(source.path)
    if not path.is_absolute():
        path = base_dir / path
    confine(path, data_root(), field="data.source.path")
    if not path.exists():
        raise InputError(
            f"data.source.path: {path} does not exist; expected the {source.kind} data there"
        )
    if isinstance(source, NpzData):
        return read_npz(source, path)
    if isinstance(source, CsvData):
        return read_csv(source, path, plan.task)
    if isinstance(source, ImageFolderData):
        return read_image_folder(source, path, plan.class_mode)
    raise InputError(f"data.source.kind: {source.kind!r} is not readable")


# ----------------------------------------------------------------------------- bundled


def read_builtin(source: BuiltinData, plan: Plan) -> Raw:
    """A scikit-learn bundled dataset or a generated one, with class subset and resizing."""
    name = source.name
    if name in DERIVED_DIGITS:
        if source.classes is not None or source.positive_class is not None:
            raise InputError(
                f"data.source.classes: {name!r} has its own labels; remove classes/positive_class"
            )
        from engine.datasets.digit_sets import make_digit_set

        x, y, names = make_digit_set(name, source.n_samples, plan.data.split_seed)
        return Raw(x, y, names, source.subsample)
    if name in ("shapes", "shapes_detection"):
        size = source.image_size or (32, 32)
        x, y = make_shapes(
            source.n_samples or 1200,
            size,
            plan.data.split_seed,
            detection=name == "shapes_detection",
        )
        names = list(SHAPE_NAMES)
    else:
        import sklearn.datasets as skd

        loaded = getattr(skd, f"load_{name}")()
        x, y = loaded.data.astype(np.float32), loaded.target
        names = [str(n) for n in getattr(loaded, "target_names", [])] or None
        if name == "digits":
            x = x.reshape(-1, 8, 8, 1)
            names = [str(d) for d in range(10)]
            if source.image_size is not None:
                x = resize_images(x, source.image_size)
        elif source.image_size is not None:
            raise InputError(
                f"data.source.image_size: {name!r} is a table, not images; remove image_size"
            )
    if source.classes is not None:
        x, y, names = _keep_classes(
            x, y, source.classes, names, detection=name == "shapes_detection"
        )
    if source.positive_class is not None:
        x, y, names = _one_vs_rest(x, y, source.positive_class, names)
    return Raw(x, y, names, source.subsample)


def _one_vs_rest(x, y, positive: int, names):
    """A binary task from a multiclass set: ``positive`` is 1, every other class 0."""
    if y.ndim != 1 or positive not in set(np.asarray(y).tolist()):
        raise InputError(f"data.source.positive_class: {positive} is not a class id of the dataset")
    label = names[positive] if names else str(positive)
    return x, (y == positive).astype(np.int32), [f"not {label}", label]


def _keep_classes(x, y, classes: list[int], names, detection: bool):
    labels = (y[:, 4] if detection else y).astype(np.int64)
    missing = [c for c in classes if c not in set(labels.tolist())]
    if missing:
        raise InputError(
            f"data.source.classes: {missing} not in the dataset; expected ids 0..{labels.max()}"
        )
    keep = np.isin(labels, classes)
    relabel = {c: i for i, c in enumerate(classes)}
    new = np.array([relabel[c] for c in labels[keep]])
    y = y[keep].copy()
    if detection:
        y[:, 4] = new
    else:
        y = new
    names = [names[c] for c in classes] if names else None
    return x[keep], y, names


def resize_images(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of [N, H, W, C] images (antialiased when shrinking)."""
    import jax
    import jax.numpy as jnp

    out = jax.image.resize(jnp.asarray(x), (x.shape[0], size[0], size[1], x.shape[3]), "linear")
    return np.asarray(out, np.float32)


def make_shapes(
    n: int, size: tuple[int, int], seed: int, detection: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Grey images of one random shape each: circle, square, triangle or cross.

    Position, size and brightness vary; a little noise is added.  Targets are
    the class ids, or for detection ``[x1, y1, x2, y2, class]`` with the box in
    [0, 1] image coordinates (x across, y down).
    """
    rng = np.random.default_rng(seed)
    h, w = size
    labels = np.arange(n) % len(SHAPE_NAMES)
    rng.shuffle(labels)
    radius = rng.uniform(0.15, 0.3, n) * min(h, w)
    cx = rng.uniform(radius, w - radius)
    cy = rng.uniform(radius, h - radius)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    dx = np.abs(xx[None] - cx[:, None, None])
    dy = yy[None] - cy[:, None, None]
    r = radius[:, None, None]
    masks = np.stack(
        [
            dx**2 + dy**2 <= r**2,  # circle
            (dx <= r) & (np.abs(dy) <= r),  # square
            (np.abs(dy) <= r) & (dx <= (dy + r) / 2),  # triangle, apex up
            ((dx <= r / 3) & (np.abs(dy) <= r)) | ((np.abs(dy) <= r / 3) & (dx <= r)),  # cross
        ]
    )[labels, np.arange(n)]
    brightness = rng.uniform(0.5, 1.0, n)[:, None, None]
    images = masks * brightness + rng.normal(0.0, 0.05, (n, h, w))
    x = images[..., None].astype(np.float32)
    if not detection:
        return x, labels.astype(np.int32)
    boxes = np.stack(
        [(cx - radius) / w, (cy - radius) / h, (cx + radius) / w, (cy + radius) / h], axis=1
    )
    return x, np.concatenate([boxes, labels[:, None]], axis=1).astype(np.float32)


# ----------------------------------------------------------------------------- files


def read_npz(source: NpzData, path: Path) -> Raw:
    """Inputs and targets from two arrays of an .npz file."""
    checked_file(path, field="data.source.path", what=".npz file")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            missing = [k for k in (source.x_key, source.y_key) if k not in arrays]
            if missing:
                raise InputError(
                    f"data.source.{'x_key' if missing[0] == source.x_key else 'y_key'}: "
                    f"{path} has no array "
                    f"{missing[0]!r}; it has {', '.join(sorted(arrays.files))}"
                )
            x, y = arrays[source.x_key], arrays[source.y_key]
    except (OSError, ValueError, EOFError, MemoryError, zipfile.BadZipFile) as err:
        raise InputError(
            f"data.source.path: {path} is not a readable .npz file ({type(err).__name__})"
        ) from None
    if len(x) != len(y):
        raise InputError(
            f"data.source: {path} has {len(x)} inputs but {len(y)} targets; expected one each"
        )
    if not np.issubdtype(x.dtype, np.number):
        raise InputError(f"data.source.x_key: {path} inputs are {x.dtype}; expected numbers")
    return Raw(x, y)


def read_csv(source: CsvData, path: Path, task: str) -> Raw:
    """A table (.csv with a header row, or .parquet): the target and the feature columns.

    Read with pandas (``engine.datasets.tables``); text feature columns become category
    codes, listed in ``Raw.categories`` (``source.categories`` when the plan gives them).
    """
    from engine.datasets import tables

    field = "data.source.path"
    checked_file(path, field=field, what="table (.csv or .parquet)", max_bytes=MAX_DATA_BYTES)
    frame = tables.read_frame(path, field)
    header = list(frame.columns)
    if len(frame) == 0:
        raise InputError(f"data.source.path: {path} has no data rows; expected a header and rows")
    if source.target not in header:
        raise InputError(
            f"data.source.target: {source.target!r} is not a column of {path}; {_columns(header)}"
        )
    features = source.features or [h for h in header if h != source.target]
    for name in features:
        if name not in header:
            raise InputError(f"data.source.features: {name!r} is not a column of {path}")
    categories = dict(source.categories or {})
    learned = tables.learn_categories(frame, [f for f in features if f not in categories])
    categories.update(learned)
    x = tables.encode_features(frame, features, categories, "data.source.features")
    infinite = np.argwhere(np.isinf(x))
    if len(infinite):
        row, column = infinite[0]
        raise InputError(
            f"data.source.features: column {features[column]!r} of {path} is infinite in row "
            f"{row + 2}; expected finite numbers (leave a missing value empty)"
        )
    kept = {k: v for k, v in categories.items() if k in features} or None
    y, names = target_values(frame[source.target], source.target, task)
    return Raw(x, y, names, feature_names=features, categories=kept)


def target_values(column, name: str, task: str) -> tuple[np.ndarray, list[str] | None]:
    """A table's target column in the task's raw form, and class names for text labels."""
    from engine.datasets import tables

    if task in ("binary", "multiclass"):
        if tables.is_numeric(column) and column.notna().all():
            values = column.to_numpy(np.float64)
            if np.all(np.isfinite(values)) and np.all(np.mod(values, 1) == 0):
                return values.astype(np.int32), None
        text = column.astype(object).where(column.notna(), "").astype(str).str.strip()
        names = sorted(set(text.tolist()))  # categorical target -> class ids in name order
        ids = {label: i for i, label in enumerate(names)}
        return text.map(ids).to_numpy(np.int32), names
    if not tables.is_numeric(column):
        raise InputError(
            f"data.source.target: column {name!r} is not numeric; a {task} target must be"
        )
    y = column.to_numpy(np.float32, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(y))
    if len(bad):
        raise InputError(
            f"data.source.target: column {name!r} is empty or not a finite float32 number in "
            f"row {bad[0] + 2}; expected finite numbers"
        )
    return y, None


def read_image_folder(source: ImageFolderData, path: Path, class_mode: str | None) -> Raw:
    """One sub-folder per class (Keras flow_from_directory); classes in name order."""
    checked_folder(path, field="data.source.path", what="folder of class folders")
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InputError(
            f"data.source.path: {path} has no class sub-folders; expected one folder per class"
        )
    if class_mode == "binary" and len(classes) != 2:
        raise InputError(
            f"class_mode: 'binary' needs 2 class folders, {path} has {len(classes)} "
            f"({', '.join(classes)})"
        )
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(f for f in (path / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        for file in files:
            images.append(read_image(file, source.image_size, source.color_mode))
            labels.append(label)
    if not images:
        raise InputError(f"data.source.path: {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return Raw(np.stack(images), np.array(labels, np.int32), classes)


def read_image(file: Path, size: tuple[int, int], color_mode: str) -> np.ndarray:
    """One image as float32 [H, W, C] in [0, 255], resized to ``size``."""
    try:
        from PIL import Image
    except ImportError:  # Pillow arrives with matplotlib; this is for a bare install
        return _read_image_matplotlib(file, size, color_mode)
    checked_file(file, field="data.source.path", what="image")
    try:
        with Image.open(file) as image:
            image = image.convert("L" if color_mode == "grayscale" else "RGB")
            image = image.resize((size[1], size[0]), Image.BILINEAR)
            array = np.asarray(image, np.float32)
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise InputError(
            f"data.source.path: {file} is not a readable image ({type(err).__name__}); "
            f"expected an image of at most {Image.MAX_IMAGE_PIXELS} pixels"
        ) from None
    return array[..., None] if array.ndim == 2 else array


_NAME = re.compile(r"[\w .%()/+-]{1,40}")


def _columns(header: list[str]) -> str:
    """The header's names when they look like column names; never a line of some other file."""
    if len(header) <= 20 and all(_NAME.fullmatch(name) for name in header):
        return "columns: " + ", ".join(header)
    return f"its header row has {len(header)} fields"


def _read_image_matplotlib(file: Path, size: tuple[int, int], color_mode: str) -> np.ndarray:
    import matplotlib.image as mpimg

    array = np.asarray(mpimg.imread(file), np.float32)
    if array.max() <= 1.0:
        array = array * 255.0
    if array.ndim == 2:
        array = array[..., None]
    array = array[..., :3]
    if color_mode == "grayscale":
        array = array.mean(axis=-1, keepdims=True)
    elif array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return resize_images(array[None], size)[0]
