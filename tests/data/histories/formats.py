"""Writers of training histories in the formats users have, for the test collection.

Each writer takes per-epoch series (contract names: loss, val_loss, accuracy,
val_accuracy, lr, grad_norm ...) and writes them as the real library does:
Keras ``history.history`` JSON and ``CSVLogger`` CSV (epochs from 0, keys
sorted), Lightning ``CSVLogger`` ``metrics.csv`` (per-step rows interleaved
with epoch-end rows, blanks elsewhere), Hugging Face ``trainer_state.json``
(per-step training logs, per-epoch ``eval_*`` logs, a closing summary),
TensorBoard event files (hand-encoded TFRecords: PyTorch-style ``simple_value``
tags in one file, or Keras-style tensor scalars in train/ and validation/
folders), Keras console logs, and this project's own history.json.
"""

from __future__ import annotations

import csv
import io
import json
import math
import struct
from pathlib import Path

import numpy as np

# ----------------------------------------------------------------------------- helpers

_KERAS_NAMES = {"accuracy": "accuracy", "val_accuracy": "val_accuracy", "lr": "learning_rate"}


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def _json_value(value):
    if value is None:
        return None
    return float(value)


def _epoch_series(series: dict[str, list]) -> int:
    return max(len(v) for v in series.values())


# ----------------------------------------------------------------------------- native and Keras


def write_native(path: Path, series: dict, task: str | None, n_classes: int | None) -> Path:
    n = _epoch_series(series)
    data = {
        "source": {"format": "native", "path": None, "skipped": []},
        "epochs": list(range(1, n + 1)),
        "series": {k: [_json_value(v) for v in vals] for k, vals in series.items()},
        "task": task,
        "n_classes": n_classes,
    }
    path.write_text(json.dumps(data, indent=1))  # NaN/Infinity as Python's json writes them
    return path


def write_keras_json(path: Path, series: dict) -> Path:
    table = {_KERAS_NAMES.get(k, k): [_json_value(v) for v in vals] for k, vals in series.items()}
    path.write_text(json.dumps(table))
    return path


def write_keras_csv(path: Path, series: dict) -> Path:
    """CSVLogger: 'epoch' then the keys in sorted order, one row per epoch from 0."""
    names = sorted(_KERAS_NAMES.get(k, k) for k in series)
    back = {_KERAS_NAMES.get(k, k): k for k in series}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["epoch", *names])
    for epoch in range(_epoch_series(series)):
        writer.writerow([epoch, *(_fmt(series[back[n]][epoch]) for n in names)])
    path.write_text(out.getvalue())
    return path


def write_text_log(path: Path, series: dict, steps: int = 25) -> Path:
    """Keras 2 console output: progress updates, then the closing line with val_ metrics."""
    n = _epoch_series(series)
    lines = []
    order = [k for k in series if not k.startswith("val_")]
    val_order = [k for k in series if k.startswith("val_")]
    for epoch in range(n):
        lines.append(f"Epoch {epoch + 1}/{n}")
        train = " - ".join(f"{k}: {_fmt4(series[k][epoch])}" for k in order[:2])
        lines.append(f"{steps // 2}/{steps} [=============>................] - ETA: 1s - {train}")
        closing = " - ".join(f"{k}: {_fmt4(series[k][epoch])}" for k in order + val_order)
        lines.append(f"{steps}/{steps} [==============================] - 2s 61ms/step - {closing}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _fmt4(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return _fmt(value) or "nan"
    return f"{value:.4g}" if abs(value) < 1e-3 else f"{value:.4f}"


# ----------------------------------------------------------------------------- Lightning


def write_lightning_csv(
    path: Path, series: dict, steps_per_epoch: int, rng: np.random.Generator
) -> Path:
    """metrics.csv: train_loss_step every 10 steps, then val and train_loss_epoch rows at epoch end."""
    columns = ["epoch", "step", "train_loss_step", "train_loss_epoch"]
    extra = [k for k in series if k not in ("loss",)]
    names = {
        "val_loss": "val_loss",
        "val_accuracy": "val_acc",
        "accuracy": "train_acc",
        "lr": "lr-Adam",
    }
    columns += [names.get(k, k) for k in extra]
    rows = []
    step = 0
    for epoch in range(_epoch_series(series)):
        mean = series["loss"][epoch]
        for _ in range(steps_per_epoch // 10):
            step += 10
            noisy = (
                mean * float(np.exp(rng.normal(0, 0.05)))
                if mean is not None and math.isfinite(mean)
                else mean
            )
            rows.append({"epoch": epoch, "step": step - 1, "train_loss_step": noisy})
        end = {"epoch": epoch, "step": step - 1}
        for key in extra:
            end[names.get(key, key)] = series[key][epoch]
        rows.append(end)
        rows.append({"epoch": epoch, "step": step - 1, "train_loss_epoch": mean})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            [
                _fmt(row[c]) if c in row and c not in ("epoch", "step") else row.get(c, "")
                for c in columns
            ]
        )
    path.write_text(out.getvalue())
    return path


# ----------------------------------------------------------------------------- Hugging Face


def write_hf(path: Path, series: dict, steps_per_epoch: int, rng: np.random.Generator) -> Path:
    """trainer_state.json with logging_steps = steps_per_epoch / 4 and eval each epoch."""
    logs = []
    log_every = max(1, steps_per_epoch // 4)
    n = _epoch_series(series)
    for epoch in range(n):
        for k in range(1, 5):
            step = epoch * steps_per_epoch + k * log_every
            mean = series["loss"][epoch]
            value = (
                mean * float(np.exp(rng.normal(0, 0.03)))
                if mean is not None and math.isfinite(mean)
                else mean
            )
            entry = {
                "epoch": round(epoch + k / 4, 4),
                "grad_norm": float(rng.uniform(0.5, 2.0)),
                "learning_rate": series.get("lr", [5e-5] * n)[epoch],
                "loss": value,
                "step": step,
            }
            for key, values in series.items():  # what a logging callback adds (grad norms ...)
                if key not in ("loss", "lr") and not key.startswith("val_"):
                    entry[key] = values[epoch]
            logs.append(entry)
        evaluation = {
            "epoch": float(epoch + 1),
            "step": (epoch + 1) * steps_per_epoch,
            "eval_runtime": 1.25,
            "eval_samples_per_second": 800.0,
            "eval_steps_per_second": 25.0,
        }
        for key, values in series.items():
            if key.startswith("val_"):
                evaluation["eval_" + key.removeprefix("val_")] = values[epoch]
        logs.append(evaluation)
    logs.append(
        {
            "epoch": float(n),
            "step": n * steps_per_epoch,
            "total_flos": 1.0e12,
            "train_loss": 0.5,
            "train_runtime": 100.0,
            "train_samples_per_second": 50.0,
            "train_steps_per_second": 3.0,
        }
    )
    state = {
        "best_metric": None,
        "best_model_checkpoint": None,
        "epoch": float(n),
        "eval_steps": steps_per_epoch,
        "global_step": n * steps_per_epoch,
        "is_hyper_param_search": False,
        "log_history": logs,
        "logging_steps": log_every,
        "max_steps": n * steps_per_epoch,
        "num_train_epochs": n,
        "train_batch_size": 32,
    }
    path.write_text(json.dumps(state, indent=2))
    return path


# ----------------------------------------------------------------------------- TensorBoard (hand-encoded)


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    key = _varint((number << 3) | wire)
    if wire == 2:
        return key + _varint(len(payload)) + payload
    return key + payload


def encode_event(
    step: int,
    wall_time: float,
    tag: str | None = None,
    value: float | None = None,
    tensor: bool = False,
    file_version: str | None = None,
) -> bytes:
    """An Event protobuf: file_version, or one scalar as simple_value or as a float tensor."""
    body = _field(1, 1, struct.pack("<d", wall_time)) + _field(2, 0, _varint(step))
    if file_version is not None:
        return body + _field(3, 2, file_version.encode())
    if tensor:
        tensor_proto = (
            _field(1, 0, _varint(1)) + _field(2, 2, b"") + _field(4, 2, struct.pack("<f", value))
        )
        plugin = _field(1, 2, _field(1, 2, b"scalars"))
        summary_value = (
            _field(1, 2, tag.encode()) + _field(9, 2, plugin) + _field(8, 2, tensor_proto)
        )
    else:
        summary_value = _field(1, 2, tag.encode()) + _field(2, 5, struct.pack("<f", value))
    return body + _field(5, 2, _field(1, 2, summary_value))


def record(payload: bytes) -> bytes:
    """One TFRecord: length, masked CRC of the length, payload, masked CRC of the payload."""
    length = struct.pack("<Q", len(payload))
    return (
        length + struct.pack("<I", _masked(length)) + payload + struct.pack("<I", _masked(payload))
    )


def write_tensorboard_file(path: Path, series: dict) -> Path:
    """PyTorch SummaryWriter style: one file, tags Loss/train, Loss/val, Accuracy/..., step = epoch."""
    tags = {
        "loss": "Loss/train",
        "val_loss": "Loss/val",
        "accuracy": "Accuracy/train",
        "val_accuracy": "Accuracy/val",
        "lr": "lr",
    }
    out = [record(encode_event(0, 1.7e9, file_version="brain.Event:2"))]
    for epoch in range(_epoch_series(series)):
        for key, values in series.items():
            if values[epoch] is not None:
                out.append(
                    record(encode_event(epoch, 1.7e9 + epoch, tags.get(key, key), values[epoch]))
                )
    path.write_bytes(b"".join(out))
    return path


def write_tensorboard_keras(folder: Path, series: dict) -> Path:
    """Keras TensorBoard callback style: train/ and validation/ folders, tensor scalars epoch_<name>."""
    for sub, keys in (
        ("train", [k for k in series if not k.startswith("val_")]),
        ("validation", [k for k in series if k.startswith("val_")]),
    ):
        if not keys:
            continue
        (folder / sub).mkdir(parents=True, exist_ok=True)
        out = [record(encode_event(0, 1.7e9, file_version="brain.Event:2"))]
        for epoch in range(_epoch_series(series)):
            for key in keys:
                name = "learning_rate" if key == "lr" else key.removeprefix("val_")
                if series[key][epoch] is not None:
                    out.append(
                        record(
                            encode_event(
                                epoch,
                                1.7e9 + epoch,
                                f"epoch_{name}",
                                series[key][epoch],
                                tensor=True,
                            )
                        )
                    )
        (folder / sub / "events.out.tfevents.1700000000.host.1.v2").write_bytes(b"".join(out))
    return folder
