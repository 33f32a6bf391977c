"""The six clauses of tests/corpus/CRITERIA.md settled on 2026-12-04 (never-computed series,
rounding and noise, the 8-epoch rise share, 'still rising', poor fit needs an accuracy, the
slow monitored tail), each on a real published history of tests/corpus/entries.

Numbers asserted are read from the entry's own file here, never written down from a run.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from advisor.diagnostics.diagnosis import diagnose, render
from advisor.readers import load_history

ENTRIES = Path(__file__).parent / "corpus" / "entries"


def history_of(entry_id: str):
    """The entry's history, with the task its meta.toml states."""
    folder = ENTRIES / entry_id
    meta = tomllib.loads((folder / "meta.toml").read_text())
    history = load_history(folder / meta["file"])
    if meta.get("task") not in (None, "unknown"):
        history = history.model_copy(
            update={"task": meta["task"], "n_classes": meta.get("n_classes") or history.n_classes}
        )
    return history


def names(diagnosis) -> set[str]:
    return {p.name for p in diagnosis.problems}


def finite(values) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and math.isfinite(v)])


# ----------------------------------------------------------------------------- (a) never computed


def test_a_validation_loss_nan_at_every_epoch_is_left_out_and_the_report_says_so():
    """d_other_csv_yolo_val_nan_225ep_01: val box, cls and dfl losses NaN at all 225 epochs
    (no validation was computed); the training loss falls normally."""
    history = history_of("d_other_csv_yolo_val_nan_225ep_01")
    assert all(v is None or math.isnan(v) for v in history.series["val_loss"])
    d = diagnose(history)
    assert "diverged" not in names(d) and d.features["curve.nonfinite"] is False
    assert "val_loss" in d.features["curve.never_computed"].split(", ")
    assert d.features["curve.has_val"] is False
    assert any("never computed" in note and "val_loss" in note for note in d.history.notes)
    assert any("left out" in line and "val_loss" in line for line in render(d))


def test_one_infinite_value_in_a_computed_head_is_diverged_from_that_epoch():
    """d_other_csv_yolo_dog_inf_epoch5_01: train/box_loss is inf at one epoch, finite around it."""
    history = history_of("d_other_csv_yolo_dog_inf_epoch5_01")
    box = history.series["box_loss"]
    first_bad = next(
        e for e, v in zip(history.epochs, box, strict=True) if v is not None and math.isinf(v)
    )
    assert any(v is not None and math.isfinite(v) for v in box[history.epochs.index(first_bad) :])
    d = diagnose(history)
    assert d.primary == "diverged"
    assert d.features["curve.nonfinite_epoch"] == first_bad
    assert "box_loss" not in d.features.get("curve.never_computed", "")


def test_a_training_loss_nan_at_every_epoch_broke_down_and_was_not_left_out():
    """a_keras_console_mnist_cnn_nan_4404: loss and val_loss NaN from the first epoch; the loss
    the run minimises is computed at every step, so this is a breakdown, not an empty column."""
    history = history_of("a_keras_console_mnist_cnn_nan_4404")
    assert all(math.isnan(v) for v in history.series["loss"])
    d = diagnose(history)
    assert d.primary == "diverged"
    assert d.features["curve.nonfinite_epoch"] == history.epochs[0]
    assert "curve.never_computed" not in d.features


# ----------------------------------------------------------------------------- (b) rounding, noise


def test_a_change_of_one_printed_decimal_is_rounding_not_a_rise():
    """a_keras_console_fractalnet_cifar_chance_01: a loss printed to 4 decimals that moves by
    0.0001 at most; its one uptick is the log's rounding."""
    history = history_of("a_keras_console_fractalnet_cifar_chance_01")
    y = finite(history.series["loss"])
    ups = np.diff(y)[np.diff(y) > 0]
    assert len(ups) and np.all(ups <= 1e-4 + 1e-12)
    d = diagnose(history)
    assert d.features["curve.loss.rounding_unit"] == 1e-4
    assert d.features["curve.loss.rise_share"] == 0
    assert "lr_too_high" not in names(d) and d.primary == "underfitting"


def test_rises_under_two_per_cent_of_the_range_are_noise_not_instability():
    """c_hf_trainer_state_trocr_13ep_01: per-epoch L 0.86 -> 0.11 with four small upticks, each
    under 2 % of the curve's first-minus-best range."""
    history = history_of("c_hf_trainer_state_trocr_13ep_01")
    y = finite(history.series["loss"])
    diffs = np.diff(y)
    assert np.mean(diffs > 0) >= 0.3  # counted raw, the rise share clause would hold
    assert np.all(diffs[diffs > 0] < 0.02 * (y[0] - y.min()))
    d = diagnose(history)
    assert d.features["curve.loss.rise_share"] == 0 and d.features["curve.loss.max_rise"] == 0
    assert "lr_too_high" not in names(d)


def test_the_rise_share_is_judged_over_eight_epochs_and_poor_fit_needs_an_accuracy():
    """d_lightning_csv_bce_noisy_5ep_01: 5 epochs, half the moves up by ~10 %; no accuracy
    logged, a loss levelled off at 3/4 of the chance loss beside its validation loss."""
    history = history_of("d_lightning_csv_bce_noisy_5ep_01")
    assert "accuracy" not in history.series
    d = diagnose(history)
    f = d.features
    assert f["curve.loss.rise_share"] >= 0.3 and f["curve.loss.median_move"] >= 0.04
    assert f["curve.loss.epochs"] < 8
    assert f["curve.loss.chance_ratio"] >= 0.3 and f["curve.gap.final"] <= 0.25
    assert "lr_too_high" not in names(d) and "underfitting" not in names(d)


# ----------------------------------------------------------------------------- (c) still rising


def test_a_loss_twice_its_best_still_rising_at_the_end_is_diverged():
    """a_keras_csv_docking_rmse_jump_01: L falls to its best, then ends at 2.1x it, the last
    value above the one before and above the tail's first."""
    history = history_of("a_keras_csv_docking_rmse_jump_01")
    y = finite(history.series["loss"])
    tail = max(3, math.ceil(len(y) / 5))
    assert y[-1] > 2 * y.min() and y[-1] > y[-2] and y[-1] > y[-tail]
    d = diagnose(history)
    assert d.primary == "diverged"
    assert d.problems[0].rule == "diagnose_diverged_ends_far_above_best"


def test_a_loss_far_above_its_best_that_fell_at_the_end_is_unstable_not_diverged():
    """d_keras_json_face_chaotic_20ep_01: L ends 5x its best, but its last value is below the
    tail's first: chaotic, read by the lr_too_high rules."""
    history = history_of("d_keras_json_face_chaotic_20ep_01")
    y = finite(history.series["loss"])
    tail = max(3, math.ceil(len(y) / 5))
    assert y[-1] > 2 * y.min() and not (y[-1] > y[-2] and y[-1] > y[-tail])
    d = diagnose(history)
    assert d.features["curve.loss.still_rising"] is False
    assert "diverged" not in names(d) and d.primary == "lr_too_high"


# ----------------------------------------------------------------------------- (f) slow tail


def test_a_monitored_tail_still_gaining_a_little_is_inconclusive_with_what_would_settle_it():
    """c_other_json_plant_cnn_aug_01: V reaches a new best in its tail (well over 2 %), but
    that is a sliver of the run's whole improvement: neither flattened nor cut short."""
    history = history_of("c_other_json_plant_cnn_aug_01")
    v = finite(history.series["val_loss"])
    tail = max(3, math.ceil(len(v) / 5))
    before, last = v[:-tail].min(), v[-tail:].min()
    assert (before - last) / before >= 0.02 and (before - last) / (v[0] - v.min()) < 0.05
    d = diagnose(history)
    assert d.primary == "inconclusive" and "healthy" not in names(d)
    assert d.problems[0].rule == "diagnose_inconclusive_slow_tail"
    assert "settle_slow_tail" in {a.name for a in d.advice}


# ----------------------------------------------------------------------------- (e) flattened on V


def test_a_long_run_flat_on_validation_while_training_still_falls_is_healthy_not_a_plateau():
    """d_other_csv_yolo_v8n_100ep_01 (healthy): YOLO losses over 100 epochs; the training loss
    still gains over its tail, the validation loss (the monitored curve) does not; the
    training loss rested for under a fifth of the run, then fell on by a fraction."""
    d = diagnose(history_of("d_other_csv_yolo_v8n_100ep_01"))
    f = d.features
    assert f["curve.loss.tail_gain"] >= 0.02 > f["curve.val_loss.tail_gain"]
    assert f["curve.loss.plateau_length"] < 0.2 * f["curve.n_epochs"]
    assert f["curve.loss.drop_after_plateau"] < 0.5
    assert "plateau" not in names(d) and d.primary == "healthy"


# ----------------------------------------------------------------------------- misses of the seen parts


def test_a_train_loss_logged_twice_beside_a_validation_loss_every_epoch_is_judged_on_v():
    """d_lightning_csv_random_labels_5ep_01 (underfitting): random 0/1 labels; train_loss
    logged at two epochs only, val_loss at every epoch, ending near ln 2."""
    history = history_of("d_lightning_csv_random_labels_5ep_01")
    n_train = len(finite(history.series["loss"]))
    v = finite(history.series["val_loss"])
    assert n_train < 4 <= len(v) and abs(v[-3:].mean() / math.log(2) - 1) < 0.1
    d = diagnose(history)
    assert d.features["curve.main.first"] == pytest.approx(v[0], rel=1e-5)  # rounded to 6 digits
    assert d.primary == "underfitting"


def test_an_accuracy_gap_with_a_flattened_validation_loss_is_overfitting_not_healthy():
    """d_keras_json_car_type_accgap_01 (overfitting): train accuracy 1.00, val accuracy 0.56
    and no longer improving; V's tail improves its best by under 2 %."""
    d = diagnose(history_of("d_keras_json_car_type_accgap_01"))
    f = d.features
    assert f["curve.gap.accuracy"] > 0.1 and f["curve.val_loss.tail_gain"] < 0.02
    assert d.primary == "overfitting" and "healthy" not in names(d)


def test_a_near_zero_loss_ending_many_times_its_best_and_rising_is_diverged():
    """b_other_csv_baby_tiny_val_01 (diverged): L near zero in the tail, ending several times
    its best and above the value before it; the 2x clause is relative to the best itself."""
    history = history_of("b_other_csv_baby_tiny_val_01")
    y = finite(history.series["loss"])
    tail = max(3, math.ceil(len(y) / 5))
    assert y[-1] > 2 * y.min() and y[-1] > y[-2] and y[-1] > y[-tail]
    assert y[-1] < 0.01 * y[0]  # near zero against where the run started
    d = diagnose(history)
    assert d.features["curve.loss.end_over_best"] > 1 and d.primary == "diverged"


def test_a_loss_ending_ten_per_cent_above_its_best_at_a_fixed_rate_is_lr_too_high():
    """c_keras_csv_arrhythmia_tiny_01 (lr_too_high): no schedule; L falls to its best two epochs
    before the end and ends more than 10 % above it (relative to the best itself)."""
    history = history_of("c_keras_csv_arrhythmia_tiny_01")
    y = finite(history.series["loss"])
    assert "lr" not in history.series
    assert y[-1] >= 1.1 * y.min() and len(y) - 1 - int(np.argmin(y)) >= 2
    d = diagnose(history)
    assert d.primary == "lr_too_high"


def test_a_gap_grown_since_validations_best_with_v_above_it_again_is_overfitting():
    """c_lightning_csv_lstm_35ep_01 (overfitting): V reached its best two epochs before the
    end and rose since; the gap V - L ends above L and grew by half since V's best."""
    d = diagnose(history_of("c_lightning_csv_lstm_35ep_01"))
    f = d.features
    assert f["curve.gap.over_train"] >= 0.5 and f["curve.gap.growth_since_best"] >= 0.2
    assert f["curve.val_loss.epochs_since_best"] >= 2 and f["curve.val_loss.end_over_best"] > 0
    assert d.primary == "overfitting"


def test_a_validation_loss_logged_once_is_no_curve_to_watch():
    """b_other_csv_yolo_drone_valonce_01 (not_converged): validation ran only at the last
    epoch; the training loss, still gaining over its tail with a share of the run's
    improvement, is the monitored curve."""
    history = history_of("b_other_csv_yolo_drone_valonce_01")
    assert len(finite(history.series["val_loss"])) == 1
    d = diagnose(history)
    f = d.features
    assert f["curve.has_val"] is False
    assert f["curve.loss.tail_gain"] >= 0.02 and f["curve.loss.tail_share"] >= 0.05
    assert d.primary == "not_converged"
    assert "log_validation" not in {a.name for a in d.advice}


def test_a_wide_gap_that_did_not_grow_since_validations_best_does_not_stop_healthy():
    """c_other_csv_dsc_se_lightnet_01: V ends at its best, flattened; the gap V - L is wide
    but has not grown since V's best, so the gap clause of rule 5 does not hold (rule 9 as
    settled: 'no growing gap' means that clause)."""
    d = diagnose(history_of("c_other_csv_dsc_se_lightnet_01"))
    f = d.features
    assert f["curve.gap.over_train"] >= 0.5 and f["curve.gap.growth_since_best"] < 0.2
    assert f["curve.val_loss.tail_gain"] < 0.02
    assert d.primary == "healthy"


def test_a_noisy_near_zero_training_loss_does_not_oscillate_by_its_noise():
    """c_pandas_csv_foody_sentiment_01: L 0.17 -> 0.003 with upticks all under 2 % of its
    range; V rises from epoch 1 while L falls: overfitting, not a rate too high."""
    history = history_of("c_pandas_csv_foody_sentiment_01")
    y = finite(history.series["loss"])
    diffs = np.diff(y)
    assert np.all(diffs[diffs > 0] < 0.02 * (y[0] - y.min()))
    d = diagnose(history)
    assert d.features["curve.loss.backtrack"] == 0
    assert d.primary == "overfitting" and "lr_too_high" not in names(d)


def test_training_loss_falling_on_after_validations_best_is_read_to_its_last_value():
    """c_other_json_plant_cnn_noaug_01 (overfitting): V above its best by over 5 % on most
    epochs after it; L at V's best epoch against L's last value fell by over 5 %."""
    history = history_of("c_other_json_plant_cnn_noaug_01")
    t, v = finite(history.series["loss"]), finite(history.series["val_loss"])
    best = int(np.argmin(v))
    assert (t[-1] - t[best]) / t[best] <= -0.05
    d = diagnose(history)
    assert d.features["curve.loss.change_after_val_best"] <= -0.05
    assert d.primary == "overfitting"


def test_a_wide_gap_that_barely_grew_since_validations_best_is_not_overfitting():
    """c_keras_csv_blood_group_fp_01 (inconclusive): V noisy with a dip to its best four epochs
    before the end; the gap is wide but grew by under a fifth since that best, and L ends
    above its value at V's best: neither overfitting clause holds."""
    d = diagnose(history_of("c_keras_csv_blood_group_fp_01"))
    f = d.features
    assert f["curve.gap.over_train"] >= 0.5 and f["curve.gap.growth_since_best"] < 0.2
    assert f["curve.loss.change_after_val_best"] > -0.05
    assert "overfitting" not in names(d)
