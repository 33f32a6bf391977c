"""The patterns of issue 12, each on a real published history from the corpus.

Every history here is a *tune* entry of tests/corpus/entries (CRITERIA.md: an id whose
sha256 is not divisible by 3); holdout entries are only scored by benchmarks/diagnosis.py.
The labels quoted in comments are the corpus labellers', written before any detector ran.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.commands import cli
from advisor.diagnostics.diagnosis import diagnose
from advisor.readers import load_history

ENTRIES = Path(__file__).parent / "corpus" / "entries"


def is_tune(entry_id: str) -> bool:
    """Tune = not a third of the ids by hash, and not gathered as a held-out (fresh, fresh2, fresh3) entry."""
    meta_file = ENTRIES / entry_id / "meta.toml"
    held_out = ("fresh", "fresh2", "fresh3")
    if meta_file.is_file() and tomllib.loads(meta_file.read_text()).get("part") in held_out:
        return False
    return int(hashlib.sha256(entry_id.encode()).hexdigest(), 16) % 3 != 0


def entry(entry_id: str, *, told: bool = False):
    """The diagnosis of a tune entry: blind by default, or with the task its meta.toml states."""
    assert is_tune(entry_id), f"{entry_id} is a holdout entry"
    folder = ENTRIES / entry_id
    meta = tomllib.loads((folder / "meta.toml").read_text())
    history = load_history(folder / meta["file"])
    if told and meta.get("task") not in (None, "unknown"):
        history = history.model_copy(
            update={"task": meta["task"], "n_classes": meta.get("n_classes")}
        )
    return diagnose(history)


def names(diagnosis) -> set[str]:
    return {p.name for p in diagnosis.problems}


def test_a_loss_that_never_moved_is_underfitting_with_its_likely_causes():
    """a_keras_csv_stock_lstm_frozen_01: loss 0.487434 at every epoch (labelled underfitting)."""
    d = entry("a_keras_csv_stock_lstm_frozen_01")
    assert d.primary == "underfitting" and "healthy" not in names(d)
    assert d.features["curve.main.rel_drop"] < 0.05
    assert {"lr_range_test", "check_labels", "he_init"} <= {a.name for a in d.advice}


def test_a_binary_run_at_chance_is_underfitting_and_the_chance_level_is_inferred():
    """a_keras_console_rwf2000_chance_01: loss about ln 2, accuracy 0.5, no task given.
    It barely left ln 2, which is underfitting, not a learning rate too low."""
    d = entry("a_keras_console_rwf2000_chance_01")
    assert d.primary == "underfitting"
    assert "lr_too_low" not in names(d) and "healthy" not in names(d)
    assert d.features["curve.classes"] == 2
    assert d.features["curve.chance_source"] == "accuracy_and_loss"
    chance = next(p for p in d.problems if p.name == "underfitting")
    assert "curve.chance_source" in chance.evidence or "curve.main.rel_drop" in chance.evidence


def test_ten_classes_at_chance_are_found_from_log_10_and_one_tenth():
    """a_keras_console_fractalnet_cifar_chance_01: loss 2.3029 = ln 10, val accuracy 0.1."""
    d = entry("a_keras_console_fractalnet_cifar_chance_01")
    assert d.primary == "underfitting"
    assert d.features["curve.classes"] == 10
    assert d.features["curve.main.chance_ratio"] == pytest.approx(1.0, abs=0.01)


def test_a_loss_that_explodes_after_a_good_start_is_diverged():
    """a_keras_console_diverge_after_10_keras21: best 0.74 at epoch 9, then 13.4 and 26.6."""
    d = entry("a_keras_console_diverge_after_10_keras21")
    assert d.primary == "diverged" and "healthy" not in names(d)


def test_nan_late_in_a_run_is_diverged_from_its_first_nan_with_the_last_finite_loss():
    """b_logging_text_charrnn_tutorial_nan_01: six finite logged losses (2.42 ... 2.55), then
    NaN for the last four intervals; the finite part alone would not look broken."""
    d = entry("b_logging_text_charrnn_tutorial_nan_01")
    assert d.primary == "diverged" and "healthy" not in names(d)
    diverged = next(p for p in d.problems if p.name == "diverged")
    assert diverged.epochs[0] == 7 and diverged.evidence["curve.last_finite_epoch"] == 6
    assert d.features["curve.loss.last_finite"] == pytest.approx(2.5533)  # evidence is rounded


def test_nan_from_the_first_epoch_is_diverged_at_epoch_one():
    """a_keras_console_mnist_cnn_nan_4404: loss and val_loss NaN in all 8 epochs shown,
    accuracy 0.0987 (chance for 10 classes, found from the flat accuracy alone)."""
    d = entry("a_keras_console_mnist_cnn_nan_4404")
    assert d.primary == "diverged"
    diverged = next(p for p in d.problems if p.name == "diverged")
    assert diverged.epochs[0] == 1 and diverged.evidence["curve.nonfinite_series"] == "loss"
    assert d.features["curve.classes"] == 10
    assert d.features["curve.chance_source"] == "flat_accuracy"


def test_a_run_still_falling_steeply_at_its_end_is_not_converged():
    """b_other_csv_yolo_gallstone_seg_01: total val loss 7.60 -> 3.99, tail still -7 %."""
    d = entry("b_other_csv_yolo_gallstone_seg_01")
    assert d.primary == "not_converged" and "healthy" not in names(d)


def test_a_plateau_in_both_curves_is_not_overfitting():
    """a_keras_console_cifar_stuck_8680: both curves flat, accuracy 0.74 (labelled underfitting)."""
    d = entry("a_keras_console_cifar_stuck_8680")
    assert "overfitting" not in names(d)
    assert d.primary == "underfitting"


def test_validation_rising_from_its_best_while_training_falls_is_overfitting():
    """a_keras_csv_speech_digit_semicolon_01: val best at epoch 7, then 9 epochs above it by
    up to 52 % while the training loss halves."""
    d = entry("a_keras_csv_speech_digit_semicolon_01")
    assert d.primary == "overfitting" and "healthy" not in names(d)
    assert d.features["curve.val_loss.best_epoch"] == 7


def test_validation_rising_from_epoch_6_while_training_falls_is_overfitting_not_healthy():
    """a_keras_json_tweets_glove_lstm_01: val_loss best at epoch 6 of 10, above it after
    while the training loss keeps falling (the issue's 'rising from epoch 6' pattern)."""
    d = entry("a_keras_json_tweets_glove_lstm_01")
    assert d.primary == "overfitting" and "healthy" not in names(d)
    assert d.features["curve.val_loss.best_epoch"] == 6
    assert d.features["curve.loss.change_after_val_best"] < 0


def test_a_slow_straight_validation_only_run_is_lr_too_low_not_not_converged():
    """b_lightning_csv_eurosat_valonly_01: val_loss only, 2.27 -> 1.88 in a straight line."""
    d = entry("b_lightning_csv_eurosat_valonly_01")
    assert d.primary == "lr_too_low" and "not_converged" not in names(d)


def test_no_positive_evidence_is_inconclusive_not_healthy_and_says_what_to_log():
    """a_keras_csv_braincnn_01: training loss only, its tail still improving 3.7 %."""
    d = entry("a_keras_csv_braincnn_01")
    assert d.primary == "inconclusive" and "healthy" not in names(d)
    assert "log_validation" in {a.name for a in d.advice}


def test_three_epochs_are_inconclusive():
    """a_keras_csv_irfanet_3ep_01: only 3 epochs."""
    d = entry("a_keras_csv_irfanet_3ep_01")
    assert d.primary == "inconclusive" and "longer_run" in {a.name for a in d.advice}


def test_no_tune_history_gets_contradictory_findings():
    for folder in sorted(p for p in ENTRIES.iterdir() if p.is_dir() and is_tune(p.name)):
        if not (folder / "meta.toml").is_file():  # an entry still being gathered
            continue
        meta = tomllib.loads((folder / "meta.toml").read_text())
        try:
            history = load_history(folder / meta["file"])
        except Exception:  # unreadable files are the readers' to fix and the benchmark's to list
            continue
        found = names(diagnose(history))
        assert not {"lr_too_high", "lr_too_low"} <= found, folder.name
        assert "healthy" not in found or found == {"healthy"}, folder.name


def _csv_column(path: Path, name: str) -> list[float]:
    """One column of a CSV file as the csv module reads it (an independent parse)."""
    with path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle) if row]
    return [float(row[rows[0].index(name)]) for row in rows[1:]]


def test_a_pandas_export_with_an_unnamed_index_column_is_read_and_diagnosed():
    """b_pandas_csv_plants_noisy_01: DataFrame.to_csv with its unnamed index column first
    (',accuracy,loss,...'); loss 1.95 -> 0.26 -> 0.47 with 42 % rises (labelled lr_too_high)."""
    path = ENTRIES / "b_pandas_csv_plants_noisy_01" / "training_history.csv"
    history = load_history(path)
    assert history.source.format == "pandas_csv"
    assert history.series["loss"] == _csv_column(path, "loss")
    assert history.series["val_loss"] == _csv_column(path, "val_loss")
    assert set(history.series) == {"loss", "accuracy", "val_loss", "val_accuracy"}  # no index
    assert history.epochs == list(range(1, 21))
    d = entry("b_pandas_csv_plants_noisy_01")
    assert d.primary == "lr_too_high" and "healthy" not in names(d)


def test_a_pandas_export_with_train_and_val_prefixes_is_read_and_diagnosed():
    """b_pandas_csv_plant_stuck_01: 'train_loss,train_acc,val_loss,val_acc', accuracy frozen
    at 0.442 from epoch 2 and both losses flat (labelled underfitting, poor fit)."""
    path = ENTRIES / "b_pandas_csv_plant_stuck_01" / "training_history.csv"
    history = load_history(path)
    assert history.series["loss"] == _csv_column(path, "train_loss")
    assert history.series["val_accuracy"] == _csv_column(path, "val_acc")
    assert entry("b_pandas_csv_plant_stuck_01").primary == "underfitting"


def test_a_timestamped_log_file_is_read_and_a_loss_stuck_at_log_1000_is_underfitting():
    """b_logging_text_caffe_mbv3_stuck_01: glog lines ('I0515 11:05:31.873651 ... loss =
    6.91161'); the loss never leaves 6.91 = ln 1000 (labelled underfitting)."""
    path = ENTRIES / "b_logging_text_caffe_mbv3_stuck_01" / "training_output.txt"
    history = load_history(path)
    assert history.source.format == "text_log"
    assert history.series["loss"][0] == pytest.approx(6.91161)
    d = entry("b_logging_text_caffe_mbv3_stuck_01")
    assert d.primary == "underfitting" and "healthy" not in names(d)
    assert d.features["curve.main.rel_drop"] < 0.05


def test_a_timestamped_absl_log_with_accuracy_at_one_half_is_not_healthy():
    """b_logging_text_absl_acc05_late_01: absl lines ('I1112 15:56:44.818868 ... train loss:
    1.3633; train acc: 0.5000 ...'); the loss swings up and down (labelled lr_too_high)."""
    d = entry("b_logging_text_absl_acc05_late_01")
    assert d.history.format == "text_log"
    assert d.primary == "lr_too_high" and "healthy" not in names(d)


def test_a_folder_of_several_runs_gives_one_diagnosis_per_run(tmp_path):
    """Two real Lightning runs as lightning_logs/version_0 and version_1: a run at chance
    level (b_lightning_csv_mnist_chance_01) and a run that blew up at its end
    (b_lightning_csv_dogcat_30ep_01).  Each is diagnosed alone, exactly as from its own
    file; merged they would be neither."""
    runs = {
        "version_0": "b_lightning_csv_mnist_chance_01",
        "version_1": "b_lightning_csv_dogcat_30ep_01",
    }
    for version, entry_id in runs.items():
        assert is_tune(entry_id)
        folder = tmp_path / "lightning_logs" / version
        folder.mkdir(parents=True)
        shutil.copy(ENTRIES / entry_id / "metrics.csv", folder / "metrics.csv")
    result = CliRunner().invoke(cli, ["diagnose", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert set(found) == {f"lightning_logs/{v}" for v in runs}
    for version, entry_id in runs.items():
        alone = diagnose(ENTRIES / entry_id / "metrics.csv")
        assert found[f"lightning_logs/{version}"]["primary"] == alone.primary
        assert found[f"lightning_logs/{version}"]["n_epochs"] == alone.n_epochs
    assert found["lightning_logs/version_0"]["primary"] == "underfitting"
    assert found["lightning_logs/version_1"]["primary"] == "diverged"
