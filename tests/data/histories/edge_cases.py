"""Edge cases of the history formats: truncated and corrupted files, unusual layouts,
unusable files.  ``make_edge_cases(shapes, rng_for)`` writes them to edge/ and returns
the labels of those that still show a known problem (the unusable ones have none:
the tests check that they fail with one clear line).
"""

from __future__ import annotations

import json
from pathlib import Path

import formats
import numpy as np

HERE = Path(__file__).parent
OUT = HERE / "edge"


def _cut(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def make_edge_cases(shapes, rng_for) -> dict[str, dict]:
    """Write edge/ and return {relative path: label entry} for the labelled ones."""
    OUT.mkdir(parents=True, exist_ok=True)
    labels: dict[str, dict] = {}

    def label(path: Path, found, task, k, kind):
        labels[str(path.relative_to(HERE))] = {
            "labels": sorted(found),
            "task": task,
            "n_classes": k,
            "kind": kind,
        }

    # 1. Truncated files that still show their problem.
    rng = rng_for("keras_json_truncated")
    series, found, task, k = shapes.overfitting_rise(rng)
    path = formats.write_keras_json(OUT / "keras_json_truncated.json", series)
    text = path.read_text()
    path.write_text(text[: text.index('"accuracy"') + len('"accuracy": [') + 60])
    label(path, found, task, k, "truncated")

    # name -> (shape, writer, share of the bytes kept): each still shows its problem when cut.
    cut_files = {
        "native_truncated.json": (
            shapes.healthy,
            lambda p, s, t, k, r: formats.write_native(p, s, t, k),
            0.93,
        ),
        "hf_truncated.json": (
            shapes.lr_too_high_oscillating,
            lambda p, s, t, k, r: formats.write_hf(p, s, 40, r),
            0.8,
        ),
        "keras_csv_truncated.csv": (
            shapes.underfitting_chance,
            lambda p, s, t, k, r: formats.write_keras_csv(p, s),
            0.97,
        ),
        "tfevents_truncated.tfevents": (
            shapes.not_converged,
            lambda p, s, t, k, r: formats.write_tensorboard_file(p, s),
            0.995,
        ),
    }
    for name, (shape, write, keep) in cut_files.items():
        rng = rng_for(name.split(".")[0])
        series, found, task, k = shape(rng)
        label(_cut(write(OUT / name, series, task, k, rng), keep), found, task, k, "truncated")

    rng = rng_for("tfevents_bad_crc")
    series, found, task, k = shapes.healthy(rng)
    path = formats.write_tensorboard_file(OUT / "tfevents_bad_crc.tfevents", series)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one corrupted byte inside some record
    path.write_bytes(bytes(data))
    label(path, found, task, k, "corrupted")

    rng = rng_for("text_log_truncated")
    series, found, task, k = shapes.overfitting_rise(rng)
    path = formats.write_text_log(OUT / "text_log_truncated.log", series)
    text = path.read_text()
    path.write_text(text[: text.rindex("val_loss: ") + 6])
    label(path, found, task, k, "truncated")

    path = OUT / "only_nan.json"
    path.write_text('{"loss": [NaN, NaN, NaN], "val_loss": [NaN, NaN, NaN]}')
    label(path, ["diverged", "lr_too_high"], None, None, "nan")

    # 2. Unusual layouts (checked value by value in tests/test_readers.py).
    (OUT / "semicolon.csv").write_text(
        "epoch;acc;loss;val_acc;val_loss\n0;0.5;1.0;0.45;1.1\n1;0.7;0.7;0.6;0.9\n2;0.8;0.5;0.7;0.8\n"
    )
    (OUT / "bad_cell.csv").write_text("epoch,loss,val_loss\n0,1.0,1.1\n1,oops,0.9\n2,0.5,0.8\n")
    (OUT / "mismatched.json").write_text('{"loss": [1.0, 0.8, 0.6, 0.5], "val_loss": [1.1, 0.9]}')
    (OUT / "test_prefix.json").write_text(
        '{"train_loss": [1.0, 0.7, 0.5], "test_loss": [1.1, 0.8, 0.7], "test_acc": [0.5, 0.6, 0.7]}'
    )
    (OUT / "keras_wrapped.json").write_text(
        json.dumps(
            {
                "params": {"epochs": 3, "steps": 10},
                "epoch": [0, 1, 2],
                "history": {
                    "loss": [1.0, 0.6, 0.4],
                    "sparse_categorical_accuracy": [0.5, 0.7, 0.8],
                    "lr": [0.01, 0.01, 0.001],
                },
            }
        )
    )
    (OUT / "lightning_progress.log").write_text(
        "Sanity Checking: 0it [00:00, ?it/s]\n"
        "Epoch 0: 100%|##########| 50/50 [00:01<00:00, 40.1it/s, v_num=0, train_loss_step=0.900, val_loss=0.850, val_acc=0.610, train_loss_epoch=1.02]\n"
        "Epoch 1: 100%|##########| 50/50 [00:01<00:00, 41.3it/s, v_num=0, train_loss_step=0.610, val_loss=0.640, val_acc=0.720, train_loss_epoch=0.700]\n"
        "Epoch 2:  40%|####      | 20/50 [00:00<00:00, 40.0it/s, v_num=0, train_loss_step=0.5"
    )
    (OUT / "pytorch_loop.log").write_text(
        "Epoch [1/3], Train Loss: 1.2000, Val Loss: 1.3000, Val Acc: 0.55\n"
        "Epoch [2/3], Train Loss: 0.8000, Val Loss: 0.9500, Val Acc: 0.66\n"
        "Epoch [3/3], Train Loss: 0.6000, Val Loss: 0.9000, Val Acc: 0.70\n"
    )
    _hf_eval_steps(OUT / "hf_eval_steps.json")
    _tb_lightning(OUT / "tb_lightning.tfevents")
    _tb_keras_batches(OUT / "tb_keras_batches")
    run_dir = OUT / "run_dir"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "plan.json").write_text('{"task": "binary", "epochs": 3}')
    formats.write_native(
        run_dir / "history.json",
        {"loss": [0.7, 0.5, 0.4], "val_loss": [0.7, 0.6, 0.55]},
        "binary",
        2,
    )

    # 3. Unusable files: one clear line each.
    (OUT / "no_series.json").write_text('{"epoch": [0, 1, 2]}')
    (OUT / "empty.txt").write_text("")
    (OUT / "garbage.bin").write_bytes(bytes(range(256)) * 4)
    (OUT / "plain.txt").write_text("Training finished.\nThe model looks fine.\n")
    (OUT / "all_blank.csv").write_text("epoch,loss,val_loss\n0,,\n1,,\n")
    return labels


def _hf_eval_steps(path: Path) -> None:
    """One epoch, training logs every 10 steps, evaluation every 50 (eval_strategy='steps')."""
    logs = []
    for step in range(10, 501, 10):
        logs.append(
            {
                "epoch": round(step / 500, 4),
                "grad_norm": 1.0,
                "learning_rate": 5e-5,
                "loss": round(2.0 * np.exp(-step / 200) + 0.3, 4),
                "step": step,
            }
        )
        if step % 50 == 0:
            logs.append(
                {
                    "epoch": round(step / 500, 4),
                    "eval_loss": round(2.0 * np.exp(-step / 200) + 0.4, 4),
                    "eval_runtime": 0.5,
                    "step": step,
                }
            )
    logs.append(
        {"epoch": 1.0, "step": 500, "train_loss": 0.9, "train_runtime": 30.0, "total_flos": 1e10}
    )
    path.write_text(json.dumps({"global_step": 500, "log_history": logs, "epoch": 1.0}, indent=1))


def _tb_lightning(path: Path) -> None:
    """Lightning's TensorBoardLogger: global steps, train_loss_step every 10 steps,
    and at each epoch end val_loss, train_loss_epoch and the epoch number."""
    out = [formats.record(formats.encode_event(0, 1.7e9, file_version="brain.Event:2"))]
    step = 0
    for epoch in range(4):
        for _ in range(5):
            step += 10
            out.append(
                formats.record(
                    formats.encode_event(
                        step - 1, 1.7e9, "train_loss_step", 1.0 / (epoch + 1) + 0.05
                    )
                )
            )
            out.append(formats.record(formats.encode_event(step - 1, 1.7e9, "epoch", float(epoch))))
        for tag, value in (
            ("val_loss", 1.2 / (epoch + 1)),
            ("train_loss_epoch", 1.0 / (epoch + 1)),
            ("epoch", float(epoch)),
        ):
            out.append(formats.record(formats.encode_event(step - 1, 1.7e9, tag, value)))
    path.write_bytes(b"".join(out))


def _tb_keras_batches(folder: Path) -> None:
    """Keras with update_freq='batch': batch_loss on the global-step axis next to epoch_loss."""
    train = folder / "train"
    train.mkdir(parents=True, exist_ok=True)
    out = [formats.record(formats.encode_event(0, 1.7e9, file_version="brain.Event:2"))]
    for epoch in range(3):
        for batch in range(20):
            out.append(
                formats.record(
                    formats.encode_event(epoch * 20 + batch, 1.7e9, "batch_loss", 1.0, tensor=True)
                )
            )
        out.append(
            formats.record(
                formats.encode_event(epoch, 1.7e9, "epoch_loss", 1.0 - 0.2 * epoch, tensor=True)
            )
        )
    (train / "events.out.tfevents.1.host.1.v2").write_bytes(b"".join(out))
