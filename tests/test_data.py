"""engine.datasets.data and engine.datasets.sources: every source kind, the split, scaling and device-side batches."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from advisor.contract.errors import InputError
from engine.datasets.data import (
    class_counts,
    encode_targets,
    epoch_batches,
    load_data,
    split_indices,
    split_rows,
)
from engine.datasets.sources import make_shapes, read_source
from tests.engine_plans import DIGITS_CNN, make_plan


def test_digits_as_image_table_and_resized():
    image = load_data(make_plan(DIGITS_CNN))
    assert image.x_train.shape[1:] == (8, 8, 1)
    table = load_data(make_plan(DIGITS_CNN, input_shape=[64], modality="tabular"))
    assert table.x_train.shape[1:] == (64,)
    big = load_data(
        make_plan(DIGITS_CNN, input_shape=[28, 28, 1], **{"data.source.image_size": [28, 28]})
    )
    assert big.x_train.shape[1:] == (28, 28, 1)


def test_wrong_input_shape_names_the_field():
    with pytest.raises(
        InputError,
        match=r"^input_shape: the plan says \[5\] but the data has examples of shape \[4\]",
    ):
        load_data(make_plan(input_shape=[5]))


def test_class_subset_is_relabelled_and_subsample_kept():
    plan = make_plan(
        DIGITS_CNN,
        n_classes=3,
        **{"model.output_units": 3, "data.source.classes": [7, 8, 9], "data.source.subsample": 60},
    )
    data = load_data(plan)
    assert data.n_train == 60
    assert set(np.unique(data.y_train)) == {0, 1, 2}
    assert data.class_names == ["7", "8", "9"]


def test_positive_class_makes_a_binary_task():
    plan = make_plan(
        DIGITS_CNN,
        task="binary",
        n_classes=2,
        **{
            "model.output_units": 1,
            "loss.name": "binary_crossentropy",
            "data.source.positive_class": 3,
        },
    )
    data = load_data(plan)
    assert set(np.unique(data.y_train)) == {0, 1}
    assert 0.05 < data.y_train.mean() < 0.15  # one digit of ten


def test_split_is_stratified_seeded_and_disjoint():
    y = np.repeat(np.arange(4), [50, 30, 15, 5])
    train, val = split_indices(y, "multiclass", 0.2, seed=3)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(y)
    assert [int((y[val] == c).sum()) for c in range(4)] == [10, 6, 3, 1]
    again = split_indices(y, "multiclass", 0.2, seed=3)
    assert np.array_equal(val, again[1])
    assert not np.array_equal(val, split_indices(y, "multiclass", 0.2, seed=4)[1])


def test_split_rows_partitions_the_rows_and_is_what_load_data_keeps():
    plan = make_plan(**{"data.test_fraction": 0.1, "data.val_fraction": 0.2})
    y = np.repeat(np.arange(10), 40).astype(np.int32)
    train, val, test = split_rows(y, plan)
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(y)))
    assert [len(train), len(val), len(test)] == [280, 80, 40]  # val is a share of the whole
    assert class_counts(y[test], 10) == (4,) * 10  # stratified
    assert split_rows(y, make_plan())[2] is None
    # the in-memory path keeps these rows: its class counts are split_rows' on the raw labels
    data = load_data(plan)
    raw_y = read_source(plan.data.source, plan, ".").y
    train, val, test = split_rows(raw_y, plan)
    assert class_counts(data.y_train, 10) == class_counts(raw_y[train], 10)
    assert np.array_equal(data.y_val, raw_y[val]) and np.array_equal(data.y_test, raw_y[test])
    assert class_counts(np.zeros((3, 2)), 2) is None  # one-hot rows, multilabel: no counts


def test_standardisation_is_fitted_on_the_training_split():
    data = load_data(make_plan())
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=0), 1.0, atol=1e-4)
    assert abs(float(data.x_val.mean())) > 1e-4  # validation reuses the train statistics
    scaled = load_data(make_plan(**{"data.normalize": "scale_01"}))
    assert scaled.x_train.min() == 0.0 and scaled.x_train.max() == 1.0


def test_npz_source(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", inputs=rng.normal(size=(50, 4)), labels=rng.integers(0, 3, 50))
    plan = make_plan(
        **{"data.source": {"kind": "npz", "path": "d.npz", "x_key": "inputs", "y_key": "labels"}}
    )
    assert load_data(plan, tmp_path).n_train == 40
    bad = make_plan(**{"data.source": {"kind": "npz", "path": "d.npz", "x_key": "x"}})
    with pytest.raises(
        InputError, match=r"^data.source.x_key: .* has no array 'x'; it has inputs, labels"
    ):
        load_data(bad, tmp_path)


def test_csv_with_a_categorical_target(tmp_path):
    rows = ["a,b,kind"] + [f"{i},{i % 7},{'cat' if i % 3 else 'dog'}" for i in range(30)]
    (tmp_path / "t.csv").write_text("\n".join(rows))
    plan = make_plan(
        input_shape=[2],
        n_classes=2,
        task="binary",
        **{
            "model.output_units": 1,
            "loss.name": "binary_crossentropy",
            "data.source": {"kind": "csv", "path": "t.csv", "target": "kind"},
        },
    )
    data = load_data(plan, tmp_path)
    assert data.class_names == ["cat", "dog"]
    assert data.x_train.shape[1] == 2


def _write_folder(root, classes, per_class=6):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)).save(
                root / name / f"{i}.png"
            )


@pytest.mark.parametrize(
    ("classes", "task", "class_mode"),
    [(["cat", "dog"], "binary", "binary"), (["a", "b", "c"], "multiclass", "categorical")],
)
def test_image_folder(tmp_path, classes, task, class_mode):
    _write_folder(tmp_path / "imgs", classes)
    k = len(classes)
    plan = make_plan(
        DIGITS_CNN,
        task=task,
        n_classes=k,
        class_mode=class_mode,
        input_shape=[8, 8, 1],
        **{
            "model.output_units": 1 if task == "binary" else k,
            "loss.name": "binary_crossentropy"
            if task == "binary"
            else "sparse_categorical_crossentropy",
            "data.source": {
                "kind": "image_folder",
                "path": "imgs",
                "image_size": [8, 8],
                "color_mode": "grayscale",
            },
        },
    )
    data = load_data(plan, tmp_path)
    assert data.x_train.shape[1:] == (8, 8, 1) and data.class_names == classes
    assert data.n_train + data.n_val == 6 * k


def test_binary_class_mode_needs_two_folders(tmp_path):
    _write_folder(tmp_path / "imgs", ["a", "b", "c"], per_class=1)
    plan = make_plan(
        DIGITS_CNN,
        task="binary",
        n_classes=2,
        class_mode="binary",
        **{
            "model.output_units": 1,
            "loss.name": "binary_crossentropy",
            "data.source": {
                "kind": "image_folder",
                "path": "imgs",
                "image_size": [8, 8],
                "color_mode": "grayscale",
            },
        },
    )
    with pytest.raises(
        InputError, match=r"^class_mode: 'binary' needs 2 class folders, .* has 3 \(a, b, c\)$"
    ):
        load_data(plan, tmp_path)


def test_missing_path_names_the_field(tmp_path):
    plan = make_plan(**{"data.source": {"kind": "npz", "path": "nowhere.npz"}})
    with pytest.raises(InputError, match=r"^data.source.path: .*nowhere.npz does not exist"):
        load_data(plan, tmp_path)


def test_labels_out_of_range_and_nan_are_input_errors(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((20, 4)), y=np.arange(20) % 5)
    plan = make_plan(**{"data.source": {"kind": "npz", "path": "d.npz"}})
    with pytest.raises(
        InputError, match=r"^n_classes: the labels run from 0 to 4 but n_classes is 3"
    ):
        load_data(plan, tmp_path)
    x = np.ones((20, 4))
    x[3, 1] = np.nan
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(20) % 3)
    with pytest.raises(InputError, match=r"^data.source: the inputs hold 1 NaN or infinite values"):
        load_data(plan, tmp_path)


def test_shapes_detection_boxes_cover_the_shape():
    x, y = make_shapes(40, (24, 24), seed=1, detection=True)
    assert x.shape == (40, 24, 24, 1) and y.shape == (40, 5)
    assert np.all((y[:, :4] >= 0) & (y[:, :4] <= 1)) and np.all(y[:, 2:4] > y[:, :2])
    for image, (x1, y1, x2, y2, _) in zip(x[..., 0], y, strict=True):
        ys, xs = np.nonzero(image > 0.3)
        assert (
            xs.min() >= x1 * 24 - 1
            and xs.max() <= x2 * 24
            and ys.min() >= y1 * 24 - 1
            and ys.max() <= y2 * 24
        )


def test_epoch_batches_cover_every_example_once():
    key = jax.random.PRNGKey(0)
    order, mask = epoch_batches(key, jnp.int32(1), 10, 4)
    assert order.shape == (3, 4) and float(mask.sum()) == 10
    assert sorted(np.asarray(order).ravel()[np.asarray(mask).ravel() > 0].tolist()) == list(
        range(10)
    )
    other, _ = epoch_batches(key, jnp.int32(2), 10, 4)
    assert not np.array_equal(order, other)
    full, full_mask = epoch_batches(key, jnp.int32(1), 10, 64)  # batch >= n: one full batch
    assert full.shape == (1, 10) and float(full_mask.sum()) == 10


def test_encode_targets_follows_the_contract():
    ids = jnp.array([0, 2, 1])
    assert encode_targets(ids, "multiclass", "sparse_categorical_crossentropy", 3).shape == (3,)
    assert encode_targets(ids, "multiclass", "categorical_crossentropy", 3).shape == (3, 3)
    binary = encode_targets(jnp.array([0, 1]), "binary", "binary_crossentropy", 2)
    assert binary.shape == (2, 1) and binary.dtype == jnp.float32
