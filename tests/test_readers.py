"""History readers: every format detected by content, names normalised, broken files
read as far as they go with what was skipped, unusable files refused in one line."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from diagnosis_support import HISTORIES, formats

from advisor.contract.errors import InputError
from advisor.contract.schemas import History
from advisor.contract.tfrecord import crc32c, masked_crc
from advisor.readers import FORMATS, load_history
from advisor.readers.names import normalise

EDGE = HISTORIES / "edge"
N = 9
SERIES = {
    "loss": [round(2.3 * math.exp(-e / 3) + 0.1, 4) for e in range(N)],
    "val_loss": [round(2.3 * math.exp(-e / 3) + 0.3, 4) for e in range(N)],
    "accuracy": [round(0.1 + 0.8 * (1 - math.exp(-e / 3)), 4) for e in range(N)],
    "val_accuracy": [round(0.1 + 0.7 * (1 - math.exp(-e / 3)), 4) for e in range(N)],
}


WRITTEN = (
    "native",
    "keras_json",
    "keras_csv",
    "lightning_csv",
    "hf_trainer_state",
    "tensorboard",
    "text_log",
)  # formats written here; the other readers are tested on real files (test_readers_real.py)


def _write(fmt, tmp_path):
    rng = np.random.default_rng(0)
    stem = tmp_path / "run"
    writers = {
        "native": lambda: formats.write_native(stem.with_suffix(".json"), SERIES, "multiclass", 10),
        "keras_json": lambda: formats.write_keras_json(stem.with_suffix(".json"), SERIES),
        "keras_csv": lambda: formats.write_keras_csv(stem.with_suffix(".csv"), SERIES),
        "lightning_csv": lambda: formats.write_lightning_csv(
            stem.with_suffix(".csv"), SERIES, 40, rng
        ),
        "hf_trainer_state": lambda: formats.write_hf(stem.with_suffix(".json"), SERIES, 40, rng),
        "tensorboard": lambda: formats.write_tensorboard_keras(stem, SERIES),
        "text_log": lambda: formats.write_text_log(stem.with_suffix(".log"), SERIES),
    }
    return writers[fmt]()


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f in WRITTEN])
def test_every_format_reads_the_same_curves(fmt, tmp_path):
    history = load_history(_write(fmt, tmp_path))
    assert history.source.format == fmt
    assert history.epochs == list(range(1, N + 1))
    assert history.series["val_loss"] == pytest.approx(SERIES["val_loss"], abs=1e-6)
    # Lightning and Hugging Face log the training loss per step: the epoch value is the mean.
    tolerance = 0.05 if fmt in ("lightning_csv", "hf_trainer_state") else 1e-6
    assert history.series["loss"] == pytest.approx(SERIES["loss"], rel=tolerance)
    assert history.source.skipped == []


@pytest.mark.parametrize("fmt", ["keras_csv", "keras_json", "text_log", "tensorboard"])
def test_format_is_found_by_content_not_name(fmt, tmp_path):
    path = _write(fmt, tmp_path)
    if path.is_dir():
        renamed = tmp_path / "renamed_folder"
        path.rename(renamed)
    else:
        renamed = tmp_path / "history.txt"
        shutil.copy(path, renamed)
    assert load_history(renamed).source.format == fmt


@pytest.mark.parametrize(
    ("raw", "series", "granularity"),
    [
        ("acc", "accuracy", None),
        ("val_acc", "val_accuracy", None),
        ("valid_loss", "val_loss", None),
        ("eval_loss", "val_loss", None),
        ("eval_accuracy", "val_accuracy", None),
        ("train_loss", "loss", None),
        ("train_loss_step", "loss", "step"),
        ("train_loss_epoch", "loss", "epoch"),
        ("sparse_categorical_accuracy", "accuracy", None),
        ("val_binary_accuracy", "val_accuracy", None),
        ("learning_rate", "lr", None),
        ("lr-Adam", "lr", None),
        ("epoch_loss", "loss", "epoch"),
        ("validation/epoch_loss", "val_loss", "epoch"),
        ("Loss/train", "loss", None),
        ("Loss/val", "val_loss", None),
        ("batch_loss", "loss", "step"),
        ("val_mean_absolute_error", "val_mae", None),
        ("trainAcc", "accuracy", None),
        ("grad_norm", "grad_norm", None),
        ("epoch_time", "epoch_time", None),
        ("top_k_categorical_accuracy", "top5_accuracy", None),
    ],
)
def test_names_are_normalised_to_the_contract(raw, series, granularity):
    name = normalise(raw)
    assert (name.series, name.granularity) == (series, granularity)


@pytest.mark.parametrize(
    "raw",
    [
        "step",
        "epoch",
        "eval_runtime",
        "train_samples_per_second",
        "total_flos",
        "v_num",
        "batch_size",
    ],
)
def test_bookkeeping_columns_are_not_series(raw):
    assert normalise(raw) is None


def test_real_tensorboard_writer_files_read_exactly():
    """Files written by the tensorboard package's EventFileWriter (make_tensorboard_fixture.py)."""
    expected = json.loads((HISTORIES / "real" / "tb_expected.json").read_text())
    torch_style = load_history(HISTORIES / "real" / "tb_pytorch")
    keras_style = load_history(HISTORIES / "real" / "tb_keras")
    for history in (torch_style, keras_style):
        assert history.source.format == "tensorboard"
        assert history.epochs == list(range(1, 13))
        assert history.series["loss"] == pytest.approx(
            expected["loss"], rel=1e-6
        )  # float32 storage
        assert history.series["val_loss"] == pytest.approx(expected["val_loss"], rel=1e-6)
    assert torch_style.series["val_accuracy"] == pytest.approx(expected["accuracy"], rel=1e-6)
    assert keras_style.series["lr"] == pytest.approx(expected["lr"], rel=1e-6)


def test_crc32c_matches_the_published_check_value():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720)
    assert masked_crc(b"") == ((0 >> 15 | 0 << 17) + 0xA282EAD8) & 0xFFFFFFFF


@pytest.mark.parametrize(
    ("name", "fmt", "epochs", "expected"),
    [
        (
            "semicolon.csv",
            "keras_csv",
            3,
            {"accuracy": [0.5, 0.7, 0.8], "val_loss": [1.1, 0.9, 0.8]},
        ),
        (
            "test_prefix.json",
            "keras_json",
            3,
            {"val_loss": [1.1, 0.8, 0.7], "val_accuracy": [0.5, 0.6, 0.7]},
        ),
        (
            "keras_wrapped.json",
            "keras_json",
            3,
            {"accuracy": [0.5, 0.7, 0.8], "lr": [0.01, 0.01, 0.001]},
        ),
        (
            "pytorch_loop.log",
            "text_log",
            3,
            {"loss": [1.2, 0.8, 0.6], "val_accuracy": [0.55, 0.66, 0.7]},
        ),
        (
            "lightning_progress.log",
            "text_log",
            3,
            {"val_loss": [0.85, 0.64], "loss": [1.02, 0.7, 0.5]},
        ),
        ("hf_eval_steps.json", "hf_trainer_state", 1, {}),
        (
            "tb_lightning.tfevents",
            "tensorboard",
            4,
            {"loss": [1.0, 0.5, 1 / 3, 0.25], "val_loss": [1.2, 0.6, 0.4, 0.3]},
        ),
        ("run_dir", "native", 3, {"val_loss": [0.7, 0.6, 0.55]}),
    ],
)
def test_unusual_layouts(name, fmt, epochs, expected):
    history = load_history(EDGE / name)
    assert history.source.format == fmt
    assert len(history.epochs) == epochs
    for series, values in expected.items():
        assert history.series[series][: len(values)] == pytest.approx(values, rel=1e-6)


def test_hugging_face_logs_are_grouped_by_the_epoch_they_were_written_in():
    """One epoch evaluated every 50 steps: one point, the mean training loss, the last eval."""
    history = load_history(EDGE / "hf_eval_steps.json")
    logs = json.loads((EDGE / "hf_eval_steps.json").read_text())["log_history"]
    train = [e["loss"] for e in logs if "loss" in e]
    evals = [e["eval_loss"] for e in logs if "eval_loss" in e]
    assert history.epochs == [1]
    assert history.series["loss"] == [pytest.approx(sum(train) / len(train))]
    assert history.series["val_loss"] == [evals[-1]]
    assert "train_loss" not in history.series  # the run summary is not a point of the curve
    assert any("several evaluations in an epoch" in n for n in history.source.notes)


@pytest.mark.parametrize(
    ("name", "note"),
    [
        ("bad_cell.csv", "line 3: loss = 'oops' is not a number"),
        ("mismatched.json", "val_loss: 2 values for 4 epochs"),
        ("keras_json_truncated.json", "file ends early"),
        ("native_truncated.json", "file ends early"),
        ("hf_truncated.json", "file ends early"),
        ("keras_csv_truncated.csv", "ends inside this row"),
        ("tfevents_truncated.tfevents", "record cut off"),
        ("tfevents_bad_crc.tfevents", "fails its data checksum"),
        ("text_log_truncated.log", "ends inside a line"),
        ("tb_keras_batches", "train/batch_loss: logged per batch"),
    ],
)
def test_broken_files_are_read_as_far_as_they_go(name, note):
    history = load_history(EDGE / name)
    assert any(note in line for line in history.source.skipped), history.source.skipped
    assert len(history.epochs) >= 3


def test_a_corrupted_record_loses_one_value_only():
    history = load_history(EDGE / "tfevents_bad_crc.tfevents")
    values = [v for series in history.series.values() for v in series]
    assert sum(v is None for v in values) == 1


def test_nan_and_infinity_are_kept():
    history = load_history(EDGE / "only_nan.json")
    assert all(math.isnan(v) for v in history.series["loss"])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_series.json", "no_series.json: no usable series (keras_json format)"),
        ("all_blank.csv", "all_blank.csv: no usable series (keras_csv format)"),
        ("empty.txt", "empty.txt: is empty; expected a training history"),
        ("garbage.bin", "garbage.bin: not a training history this reader knows"),
        ("plain.txt", "plain.txt: not a training history this reader knows"),
        ("missing.json", "missing.json: no such file"),
    ],
)
def test_unusable_input_is_one_line(name, message):
    with pytest.raises(InputError) as err:
        load_history(EDGE / name)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_dicts_and_histories_are_accepted():
    history = load_history({"loss": [1.0, 0.5], "val_acc": [0.4, 0.6]})
    assert history.series == {"loss": [1.0, 0.5], "val_accuracy": [0.4, 0.6]}
    assert load_history(history) is history
    native = load_history(history.model_dump(mode="json"))
    assert isinstance(native, History) and native.source.format == "native"


def test_native_roundtrip_keeps_task_and_nan(tmp_path):
    path = formats.write_native(tmp_path / "h.json", {"loss": [1.0, float("nan")]}, "binary", 2)
    history = load_history(path)
    assert (history.task, history.n_classes) == ("binary", 2)
    assert math.isnan(history.series["loss"][1])


def test_a_bare_list_of_hugging_face_log_records_reads_like_trainer_state(tmp_path):
    """``trainer.state.log_history`` saved on its own: a list, not the state object."""
    logs = [
        {"loss": 0.71, "epoch": 0.5, "step": 10},
        {"loss": 0.59, "epoch": 1.0, "step": 20},
        {"eval_loss": 0.60, "eval_accuracy": 0.74, "epoch": 1.0, "step": 20},
        {"loss": 0.40, "epoch": 1.5, "step": 30},
        {"loss": 0.38, "epoch": 2.0, "step": 40},
        {"eval_loss": 0.49, "eval_accuracy": 0.79, "epoch": 2.0, "step": 40},
        {"train_runtime": 12.0, "train_loss": 0.52, "epoch": 2.0, "step": 40},
    ]
    path = tmp_path / "training_history.json"
    path.write_text(json.dumps(logs))
    history = load_history(path)
    assert history.source.format == "hf_trainer_state"
    assert history.epochs == [1, 2]
    assert history.series["loss"] == pytest.approx([0.65, 0.39])
    assert history.series["val_loss"] == [0.60, 0.49]
    assert "train_loss" not in history.series


def test_an_announced_evaluation_line_is_read_as_validation(tmp_path):
    """Paddle's example log: train and eval lines alike, told apart by the line before."""
    path = tmp_path / "training_log.txt"
    path.write_text(
        "testing in eval mode……\n"
        "epoch: 0,  loss is: 2.50, acc is: 0.07\n"
        "epoch: 0,  loss is: 0.63, acc is: 0.78\n"
        "testing in eval mode……\n"
        "epoch: 0,  loss is: 0.49, acc is: 0.84\n"
        "Now continue training……\n"
        "epoch: 1,  loss is: 0.37, acc is: 0.87\n"
        "testing in eval mode……\n"
        "epoch: 1,  loss is: 0.58, acc is: 0.80\n"
    )
    history = load_history(path)
    assert history.source.format == "text_log"
    assert history.epochs == [1, 2]
    assert history.series["loss"] == [0.63, 0.37]
    assert history.series["val_loss"] == [0.49, 0.58]
    assert history.series["val_accuracy"] == [0.84, 0.80]
