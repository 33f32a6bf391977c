"""The streaming path (row file on disk, prefetched batches) trains as the in-memory path does."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from advisor.contract.errors import InputError
from engine.datasets.sources import make_shapes
from engine.run import RunOptions, run_plan
from engine.training.streaming import RowFile, wants_stream
from tests.engine_plans import DIGITS_CNN, make_plan


def _image_folder(root, n=96, side=12):
    from PIL import Image

    x, y = make_shapes(n, (side, side), seed=3)
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(image[..., 0] * 255, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")


def _series(run_dir):
    return json.loads((run_dir / "history.json").read_text())["series"]


def _both_paths(plan, tmp_path):
    out = {}
    for path in ("memory", "stream"):
        changed = plan.model_copy(
            update={"scale": plan.scale.model_copy(update={"data_path": path})}
        )
        options = RunOptions(out_dir=tmp_path / path, base_dir=tmp_path, report=lambda _: None)
        run_plan(changed, options)
        as_run = json.loads((tmp_path / path / "plan.json").read_text())
        assert as_run["scale"]["data_path"] == path
        out[path] = _series(tmp_path / path)
    return out


def test_an_image_folder_streams_to_the_in_memory_curve(tmp_path):
    _image_folder(tmp_path / "shapes")
    plan = make_plan(
        DIGITS_CNN,
        input_shape=[12, 12, 1],
        n_classes=4,
        n_train=70,
        batch_size=16,  # 70 training images: the last batch is short
        epochs=2,
        **{
            "model.output_units": 4,
            "optimizer.name": "sgd",
            "optimizer.learning_rate": 0.05,
            "data.source": {
                "kind": "image_folder",
                "path": "shapes",
                "image_size": [12, 12],
                "color_mode": "grayscale",
            },
            "data.normalize": "scale_01",
            "data.test_fraction": 0.1,
            "scale": {},
        },
    )
    out = _both_paths(plan, tmp_path)
    for name in ("loss", "val_loss", "val_accuracy", "grad_norm"):
        np.testing.assert_allclose(
            out["stream"][name], out["memory"][name], rtol=1e-4, err_msg=name
        )
    metrics = [
        json.loads((tmp_path / p / "metrics.json").read_text()) for p in ("memory", "stream")
    ]
    assert metrics[0]["test"]["accuracy"] == metrics[1]["test"]["accuracy"]


def test_a_table_streams_to_the_in_memory_curve(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(150, 4)), columns=list("abcd"))
    frame["colour"] = rng.choice(["red", "green", "blue"], 150)
    frame["y"] = (frame["a"] + (frame["colour"] == "red") > 0.5).astype(int)
    frame.to_parquet(tmp_path / "t.parquet")
    plan = make_plan(
        input_shape=[5],
        n_classes=2,
        n_train=120,
        epochs=3,
        **{
            "model.output_units": 2,
            "data.source": {"kind": "csv", "path": "t.parquet", "target": "y"},
            "scale": {},
        },
    )
    out = _both_paths(plan, tmp_path)
    for name in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(
            out["stream"][name], out["memory"][name], rtol=1e-4, err_msg=name
        )
    pre = json.loads((tmp_path / "stream" / "preprocessing.json").read_text())
    assert pre["categories"] == {"colour": ["blue", "green", "red"]}


def test_auto_streams_above_the_threshold_only(tmp_path):
    _image_folder(tmp_path / "shapes", n=8, side=12)  # 8 x 12 x 12 x 1 x 4 bytes = 4,608
    base = {
        "input_shape": [12, 12, 1],
        "data.source": {
            "kind": "image_folder",
            "path": "shapes",
            "image_size": [12, 12],
            "color_mode": "grayscale",
        },
    }
    small = make_plan(DIGITS_CNN, **base, **{"scale": {"stream_above_mb": 4000 / 2**20}})
    large = make_plan(DIGITS_CNN, **base, **{"scale": {"stream_above_mb": 5000 / 2**20}})
    assert wants_stream(small, tmp_path) and not wants_stream(large, tmp_path)
    builtin = make_plan(**{"scale": {"data_path": "stream"}})
    with pytest.raises(InputError, match=r"^scale.data_path: 'stream' reads image folders"):
        wants_stream(builtin, tmp_path)


def test_the_row_file_reads_any_rows_in_any_order(tmp_path):
    rows = np.arange(60, dtype=np.float32).reshape(20, 3)
    store = RowFile(tmp_path / "x.npy", 20, (3,), np.float32)
    store.append(rows[:7])
    store.append(rows[7:])
    index = np.array([19, 0, 5, 5, 12])
    np.testing.assert_array_equal(store.read(index), rows[index])
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), rows)  # a valid .npy file
    store.close()
