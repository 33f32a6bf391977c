"""Data larger than memory: a row file on disk, batches read and prefetched to the device.

Chosen by ``plan.scale.data_path`` ("stream", or "auto" above
``stream_above_mb`` of decoded float32 data; ``wants_stream``) for image
folders and tables (.csv, .parquet). ``load_streamed`` decodes the source once,
chunk by chunk, into a row file (``RowFile``: the .npy format, read with
``os.pread``, so neither a memory map nor the whole set ever enters the address
space: it completes under ``ulimit -v``, with ``engine.runtime.address_space``), keeps
only the targets in memory, splits them with ``engine.datasets.data.split_rows`` (as
``load_data`` does) and fits the scaling in one chunked pass. Its ``Dataset``
holds ``Rows`` views that read and scale the rows asked for. ``StreamedPhase``
trains with the same step, batch order and epoch summary as the in-memory path
(so the same plan gives the same curve to float32 rounding; the dead-unit probe
and the evaluation chunks are at most a training batch, so ``dead_fraction``
sees fewer examples when the batch is under 256), a background thread reading
and placing the next batches while the device runs the current one. On a mesh
each batch is assembled with ``jax.make_array_from_callback``: every process
reads only the rows of its own devices' shards.

Why not grain: it would add array_record, dm-tree, etils and protobuf to the
install, and its speed comes from worker processes, which the 2-core machines
this runs on do not have to spare; what a run needs is a random-access row
store and one prefetching thread, about a hundred lines here.
"""

from __future__ import annotations

import atexit
import math
import os
import queue
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from advisor.contract.errors import InputError
from advisor.contract.schemas import CsvData, ImageFolderData, Plan, ScalePlan
from engine.datasets.data import (
    Dataset,
    check_finite,
    check_targets,
    class_counts,
    epoch_batches,
    split_rows,
    steps_for,
)
from engine.datasets.sources import IMAGE_SUFFIXES, read_image
from engine.runtime import compiler

# Examples decoded, scaled or evaluated per chunk, at most; memory stays a chunk wide.
CHUNK = 512
# Bytes of one chunk as float64 (the scaling pass's sums), at most: big images take fewer rows.
CHUNK_BYTES = 64 * 2**20


def chunk_rows(row_shape: tuple[int, ...]) -> int:
    """Rows per chunk for rows of ``row_shape``: ``CHUNK``, fewer when they are large."""
    return int(max(1, min(CHUNK, CHUNK_BYTES // (8 * math.prod(row_shape)))))


# Batches read ahead of the one training.
PREFETCH = 2


# ----------------------------------------------------------------------------- the row file


class RowFile:
    """Rows of one dtype and shape in an .npy file, written in order and read at random."""

    def __init__(self, path: Path, n: int, row_shape: tuple[int, ...], dtype) -> None:
        self.path, self.n, self.row_shape = Path(path), n, tuple(row_shape)
        self.dtype = np.dtype(dtype)
        self.row_bytes = self.dtype.itemsize * math.prod(self.row_shape)
        self._written = 0
        with self.path.open("wb") as out:
            header = {"descr": self.dtype.str, "fortran_order": False, "shape": (n, *row_shape)}
            np.lib.format.write_array_header_1_0(out, header)
            self.offset = out.tell()
        self._fd: int | None = None

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, self.dtype)
        with self.path.open("r+b") as out:
            out.seek(self.offset + self._written * self.row_bytes)
            out.write(rows.tobytes())
        self._written += len(rows)

    def read(self, index: np.ndarray) -> np.ndarray:
        """Rows ``index`` (any order, repeats allowed), read in file order."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        index = np.asarray(index, np.int64).reshape(-1)
        order = np.argsort(index, kind="stable")
        out = np.empty((len(index), *self.row_shape), self.dtype)
        flat = out.reshape(len(index), -1).view(np.uint8).reshape(len(index), self.row_bytes)
        for pos in order:
            row = int(index[pos])
            data = os.pread(self._fd, self.row_bytes, self.offset + row * self.row_bytes)
            flat[pos] = np.frombuffer(data, np.uint8)
        return out

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Rows:
    """A lazy, scaled view of some rows of a ``RowFile``: what ``Dataset`` holds when streamed.

    Indexing (an int array or a slice) reads those rows and scales them;
    ``np.asarray`` reads them all (baselines and small checks only).
    """

    def __init__(self, store: RowFile, index: np.ndarray, scaling: dict, shape: tuple[int, ...]):
        self.store, self.index, self.scaling, self.row_shape = store, index, scaling, shape

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    def __getitem__(self, key) -> np.ndarray:
        from engine.datasets.data import apply_scaling

        rows = self.store.read(self.index[key])
        return apply_scaling(rows.astype(np.float32).reshape(-1, *self.row_shape), self.scaling)

    def __array__(self, dtype=None, copy=None):
        step = chunk_rows(self.row_shape)
        parts = [self[s : s + step] for s in range(0, len(self), step)]
        out = np.concatenate(parts) if parts else np.empty(self.shape, np.float32)
        return out if dtype is None else out.astype(dtype)

    def reshape(self, *shape):
        return np.asarray(self).reshape(*shape)

    def _moments(self) -> tuple[float, float]:
        total = square = 0.0
        step = chunk_rows(self.row_shape)
        for s in range(0, len(self), step):
            part = self[s : s + step].astype(np.float64)
            total, square = total + part.sum(), square + np.square(part).sum()
        count = max(len(self) * math.prod(self.row_shape), 1)
        mean = total / count
        return mean, math.sqrt(max(square / count - mean * mean, 0.0))

    def mean(self) -> float:
        return self._moments()[0]

    def std(self) -> float:
        return self._moments()[1]


# ----------------------------------------------------------------------------- choosing


def decoded_bytes(source, plan: Plan, base_dir: Path) -> int | None:
    """float32 bytes of the source once decoded; None for a kind that is never streamed."""
    path = Path(getattr(source, "path", "") or ".")
    path = path if path.is_absolute() else base_dir / path
    if isinstance(source, ImageFolderData):
        if not path.is_dir():
            return None
        count = sum(
            1 for f in path.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
        )
        return count * 4 * math.prod(plan.input_shape)
    if isinstance(source, CsvData):
        # a text table holds at least as many bytes as its float32 values; Parquet ~ as many
        return path.stat().st_size if path.is_file() else None
    return None


def wants_stream(plan: Plan, base_dir: Path) -> bool:
    """Whether this run streams (``plan.scale.data_path``, or auto above ``stream_above_mb``).

    Raises:
        InputError: "stream" asked of a source that cannot stream, or with ``data.test``.
    """
    scale = plan.scale or ScalePlan()
    source = plan.data.source
    if scale.data_path == "memory" or plan.task == "gan" or source is None:
        return False
    size = decoded_bytes(source, plan, base_dir)
    if scale.data_path == "stream":
        if plan.freeze.strategy == "feature_extractor":
            raise InputError(
                "scale.data_path: feature_extractor trains on features cached in memory; "
                "set data_path to 'memory', or pick another freeze.strategy"
            )
        if size is None:
            raise InputError(
                f"scale.data_path: 'stream' reads image folders and tables; the source is "
                f"{source.kind}; set data_path to 'memory' or 'auto'"
            )
        if plan.data.test is not None:
            raise InputError(
                "scale.data_path: a streamed run splits its test set off with "
                "data.test_fraction; drop data.test or set data_path to 'memory'"
            )
        return True
    return (
        size is not None
        and plan.data.test is None
        and plan.freeze.strategy != "feature_extractor"
        and size > scale.stream_above_mb * 2**20
    )


# ----------------------------------------------------------------------------- loading


_CACHES: list[Path] = []


@atexit.register
def _remove_caches() -> None:
    for folder in _CACHES:
        shutil.rmtree(folder, ignore_errors=True)


def _cache_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="advisor-stream-"))
    _CACHES.append(folder)
    return folder


def _image_store(source: ImageFolderData, path: Path, plan: Plan, folder: Path):
    """Decode the image folder chunk by chunk into a row file; returns (store, labels, classes)."""
    from advisor.contract.inputs import checked_folder

    checked_folder(path, field="data.source.path", what="folder of class folders")
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InputError(
            f"data.source.path: {path} has no class sub-folders; expected one folder per class"
        )
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(f for f in (path / name).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        labels += [label] * len(found)
    if not files:
        raise InputError(f"data.source.path: {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    channels = 1 if source.color_mode == "grayscale" else 3
    shape = (*source.image_size, channels)
    # decoded 8-bit pixels are whole numbers 0..255: stored as bytes, a quarter of float32
    store = RowFile(folder / "x.npy", len(files), shape, np.uint8)
    step = chunk_rows(shape)
    for start in range(0, len(files), step):
        chunk = np.stack(
            [
                read_image(f, source.image_size, source.color_mode)
                for f in files[start : start + step]
            ]
        )
        if not np.array_equal(chunk, np.rint(chunk)) or chunk.min() < 0 or chunk.max() > 255:
            raise InputError(
                f"data.source.path: {path} holds images that do not decode to 8-bit pixels; "
                "set scale.data_path to 'memory'"
            )
        store.append(chunk.astype(np.uint8))
    return store, np.array(labels, np.int32), classes, None, None


def _table_store(source: CsvData, path: Path, task: str, folder: Path):
    """Read the table twice in chunks: categories and targets, then the coded feature rows."""
    from engine.datasets import tables
    from engine.datasets.sources import target_values

    columns = tables.header(path)
    if source.target not in columns:
        raise InputError(f"data.source.target: {source.target!r} is not a column of {path}")
    features = source.features or [c for c in columns if c != source.target]
    for name in features:
        if name not in columns:
            raise InputError(f"data.source.features: {name!r} is not a column of {path}")
    categories = dict(source.categories or {})
    learned: dict[str, set] = {}
    targets, n = [], 0
    for frame in tables.iter_frames(path, [*features, source.target]):
        for name, values in tables.learn_categories(frame, features).items():
            if name not in categories:
                learned.setdefault(name, set()).update(values)
        targets.append(frame[source.target])
        n += len(frame)
    if n == 0:
        raise InputError(f"data.source.path: {path} has no data rows; expected a header and rows")
    categories.update({name: sorted(values) for name, values in learned.items()})
    import pandas as pd

    y, names = target_values(pd.concat(targets, ignore_index=True), source.target, task)
    store = RowFile(folder / "x.npy", n, (len(features),), np.float32)
    for frame in tables.iter_frames(path, features):
        x = tables.encode_features(frame, features, categories, "data.source.features")
        check_finite(x, np.zeros(1))
        store.append(x)
    kept = {k: v for k, v in categories.items() if k in features} or None
    return store, y, names, features, kept


def load_streamed(plan: Plan, base_dir: str | Path = ".") -> Dataset:
    """The plan's data as ``load_data`` gives it, but with ``Rows`` views over a row file."""
    from advisor.contract.inputs import confine, data_root

    base_dir = Path(base_dir)
    source = plan.data.source
    path = Path(source.path)
    path = path if path.is_absolute() else base_dir / path
    confine(path, data_root(), field="data.source.path")
    if not path.exists():
        raise InputError(
            f"data.source.path: {path} does not exist; expected the {source.kind} data there"
        )
    folder = _cache_dir()
    if isinstance(source, ImageFolderData):
        store, y, names, features, categories = _image_store(source, path, plan, folder)
    else:
        store, y, names, features, categories = _table_store(source, path, plan.task, folder)
    if math.prod(store.row_shape) != math.prod(plan.input_shape):
        raise InputError(
            f"input_shape: the plan says {list(plan.input_shape)} but the data has examples of "
            f"shape {list(store.row_shape)}; set input_shape to the data's shape"
        )
    y = check_targets(y, plan)
    train_idx, val_idx, test_idx = split_rows(y, plan)
    shape = tuple(plan.input_shape)
    scaling = fit_scaling_chunked(Rows(store, train_idx, {"normalize": "none"}, shape), plan)

    def rows(index):
        return Rows(store, index, scaling, shape)

    return Dataset(
        x_train=rows(train_idx),
        y_train=y[train_idx],
        x_val=rows(val_idx),
        y_val=y[val_idx],
        input_shape=shape,
        n_classes=plan.n_classes,
        class_names=names,
        scaling=scaling,
        x_test=None if test_idx is None else rows(test_idx),
        y_test=None if test_idx is None else y[test_idx],
        feature_names=features,
        categories=categories,
    )


def fit_scaling_chunked(x: Rows, plan: Plan) -> dict:
    """``engine.datasets.data.fit_scaling`` in one pass over chunks (float64 sums; min/max exact)."""
    mode = plan.data.normalize
    if mode == "none":
        return {"normalize": "none"}
    axes = (0,) if plan.modality == "tabular" else tuple(range(x.ndim - 1))
    keep = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
    total = square = low = high = None
    count = 0
    step = chunk_rows(x.row_shape)
    for start in range(0, len(x), step):
        part = x[start : start + step].astype(np.float64)
        s = part.sum(axis=axes, keepdims=True)
        q = np.square(part).sum(axis=axes, keepdims=True)
        lo, hi = part.min(axis=axes, keepdims=True), part.max(axis=axes, keepdims=True)
        total = s if total is None else total + s
        square = q if square is None else square + q
        low = lo if low is None else np.minimum(low, lo)
        high = hi if high is None else np.maximum(high, hi)
        count += part.size // max(s.size, 1)
    if mode == "standardize":
        shift = total / count
        spread = np.sqrt(np.maximum(square / count - shift * shift, 0.0))
    else:
        shift, spread = low, high - low
    spread = np.where(spread > 0, spread, 1.0).astype(np.float32)
    return {
        "normalize": mode,
        "shift": shift.astype(np.float32).ravel().tolist(),
        "spread": spread.ravel().tolist(),
        "shape": list(keep),
    }


# ----------------------------------------------------------------------------- training


class _Prefetcher:
    """Runs ``make(i)`` for i in order on a thread, ``PREFETCH`` ahead of the consumer."""

    def __init__(self, make, count: int):
        self.count = count
        self.queue: queue.Queue = queue.Queue(PREFETCH)
        self.thread = threading.Thread(target=self._fill, args=(make, count), daemon=True)
        self.thread.start()

    def _fill(self, make, count):
        try:
            for i in range(count):
                self.queue.put((make(i), None))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, raised there
            self.queue.put((None, err))

    def __iter__(self):
        for _ in range(self.count):
            item, err = self.queue.get()
            if err is not None:
                raise err
            yield item


@dataclass(frozen=True)
class StreamedData:
    """What stays on the device when streaming: targets, the probe batch, class counts."""

    y_train: jax.Array
    probe: jax.Array
    class_counts: tuple[int, ...] | None


def put_batch(placement, rows: Rows | np.ndarray, index: np.ndarray) -> jax.Array:
    """The rows ``index`` as one array sharded over ``placement``; each process reads its part.

    A batch the device count does not divide cannot be an evenly sharded array:
    every process reads it whole and places it replicated, and the step's
    sharding constraint splits it unevenly inside the program.
    """
    if placement.mesh is None:
        return jax.device_put(rows[index], placement.devices[0])
    if len(index) % placement.n_devices:
        return placement.put(rows[index])
    shape = (len(index), *rows.shape[1:])
    return jax.make_array_from_callback(shape, placement.batch, lambda i: rows[index[i[0]]])


def make_streamed_epoch(train_step, summary, placement, n_train, batch_size, data_key):
    """``epoch(state, x_rows, y_host, data, epoch) -> (state, summary)`` reading batches.

    The batch order is ``engine.datasets.data.epoch_batches``' (the same permutation as
    the in-memory path), fetched to the host once per epoch; full batches and
    the last short one are two compiled steps, as in ``make_train_epoch``.
    """
    steps, size = steps_for(n_train, batch_size)
    last = n_train - (steps - 1) * size

    def step(state, batch):
        batch = placement.constrain_batch(batch)
        state, metrics = train_step(state, batch)
        return placement.constrain_state(state), metrics

    step_jit = compiler.jit(step, donate_argnums=0)
    summary_jit = compiler.jit(summary)
    order_jit = compiler.jit(lambda epoch: epoch_batches(data_key, epoch, n_train, batch_size))

    def epoch_fn(state, x_rows: Rows, y_host: np.ndarray, data: StreamedData, epoch: int):
        order, mask = order_jit(jnp.asarray(epoch, jnp.int32))
        order_host, mask_host = (np.asarray(a) for a in placement.local((order, mask)))

        def make(i):
            count = size if i < steps - 1 else last
            index = order_host[i, :count]
            return {
                "x": put_batch(placement, x_rows, index),
                "y": put_batch(placement, y_host, index),
                "mask": put_batch(placement, mask_host[i, :count], np.arange(count)),
            }

        collected = []
        for batch in _Prefetcher(make, steps):
            state, metrics = step_jit(state, batch)
            collected.append(metrics)
        if last < size:
            outputs = collected[-1]["outputs"]
            pad = [(0, size - last)] + [(0, 0)] * (outputs.ndim - 1)
            collected[-1] = {**collected[-1], "outputs": jnp.pad(outputs, pad)}
        stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *collected)
        return state, summary_jit(state, stacked, data.y_train, order, data.probe)

    return epoch_fn


def make_streamed_evaluate(
    network, loss_fn, config, metrics_fn, n: int, placement, row_shape, batch_size: int
):
    """``evaluate(variables, x_rows, y_host, y_device)``: ``make_evaluate``'s values, from disk."""
    from engine.datasets.data import encode_targets
    from engine.training.train import make_pooled_metrics

    # no larger than a training batch: a convolution's temporaries grow with the rows it sees
    chunk = min(n, chunk_rows(tuple(row_shape)), batch_size)

    @compiler.jit
    def forward(variables, x, y, valid):
        outputs = network.apply(variables, x, train=False, frozen_blocks=0)
        targets = encode_targets(y, config.task, config.loss_name, config.n_classes)
        return outputs, loss_fn(outputs, targets) * (jnp.arange(chunk) < valid)

    finish = make_pooled_metrics(metrics_fn, n)

    def evaluate(variables, x_rows: Rows, y_host: np.ndarray, y_device: jax.Array) -> dict:
        parts = []
        for start in range(0, n, chunk):
            index = np.minimum(np.arange(start, start + chunk), n - 1)
            x = placement.put(x_rows[index])
            y = placement.put(y_host[index])
            parts.append(forward(variables, x, y, np.int32(min(chunk, n - start))))
        return finish([o for o, _ in parts], [loss for _, loss in parts], y_device)

    return evaluate


@dataclass(frozen=True)
class StreamData:
    """A streamed run's data: row views on disk, targets on the host and the device, the probe."""

    x_train: Rows
    y_train: np.ndarray
    x_val: Rows
    y_val: np.ndarray
    device: StreamedData
    y_val_device: jax.Array
    class_counts: tuple[int, ...] | None


def build_streamed(plan: Plan, network, dataset: Dataset, device, variables, placement):
    """The ``Trainer`` of a supervised plan whose data is streamed.

    ``build_supervised``'s, with ``StreamedPhase`` reading batches from the
    dataset's ``Rows`` instead of gathering them from device-resident arrays.
    """
    from engine.optim.freeze import stages_for
    from engine.training.fit import Trainer
    from engine.training.supervised import PROBE_SIZE, SupervisedPhase, initial_state
    from engine.training.train import make_epoch_summary, make_train_step

    class StreamedPhase(SupervisedPhase):
        """A freeze stage whose batches come from disk through a prefetching thread."""

        def __init__(self, stage, data: StreamData, data_key):
            super().__init__(plan, network, stage, data, "step", data_key, device, placement)
            self.evaluate = make_streamed_evaluate(
                network,
                self.loss_fn,
                self.config,
                self.metrics_fn,
                len(data.x_val),
                placement,
                data.x_val.row_shape,
                plan.batch_size,
            )

        def begin(self, state):
            from engine.optim.freeze import make_stage_optimizer

            tx = make_stage_optimizer(self.plan, self.stage, self.steps_per_epoch, state.params)
            step = make_train_step(self.network, self.loss_fn, tx, self.config, self.augment)
            summary = make_epoch_summary(
                self.network,
                self.config,
                self.metrics_fn,
                self.plan.model.activation,
                self.n_train,
            )
            self.train_epoch = make_streamed_epoch(
                step, summary, placement, self.n_train, self.plan.batch_size, self.data_key
            )
            return state.replace(opt_state=placement.put(tx.init(state.params)))

        def run_epoch(self, state, epoch: int):
            d = self.data
            state, summary = self.train_epoch(state, d.x_train, d.y_train, d.device, epoch)
            values = {
                **summary,
                **self.evaluate(state.variables(), d.x_val, d.y_val, d.y_val_device),
            }
            return state, placement.local(values)

    counts = class_counts(dataset.y_train, dataset.n_classes)
    probe_rows = min(chunk_rows(dataset.x_train.row_shape), max(plan.batch_size, 1))
    on_device = StreamedData(
        y_train=placement.put(dataset.y_train),
        # the in-memory probe's 256 examples, fewer for large rows (as chunks are)
        probe=placement.put(
            dataset.x_train[np.arange(min(PROBE_SIZE, dataset.n_train, probe_rows))]
        ),
        class_counts=counts,
    )
    data = StreamData(
        x_train=dataset.x_train,
        y_train=np.asarray(dataset.y_train),
        x_val=dataset.x_val,
        y_val=np.asarray(dataset.y_val),
        device=on_device,
        y_val_device=placement.put(dataset.y_val),
        class_counts=counts,
    )
    data_key, state = initial_state(plan, variables, placement)
    phases = tuple(
        StreamedPhase(stage, data, data_key) for stage in stages_for(plan, network.n_blocks)
    )
    return Trainer(
        phases,
        state,
        lambda s: placement.local(s.variables()),
        n_train=len(data.x_train),
        placement=placement,
    )
