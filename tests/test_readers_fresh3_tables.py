"""Readers on the fresh3 corpus files that did not read before: one named column of
losses, a headerless table of numbers, log lines that open with a bracket, a
``[Losses: ...]`` group of loss heads, and TensorBoard scalars exported in long form.
Each input is a corpus file as its project published it (tests/corpus/entries/<id>/)."""

from __future__ import annotations

import csv
import math
import re
import tomllib
from pathlib import Path

import pytest

from advisor.readers import load_histories, load_history

CORPUS = Path(__file__).parent / "corpus" / "entries"


def _file(entry_id: str) -> Path:
    meta = tomllib.loads((CORPUS / entry_id / "meta.toml").read_text())
    return CORPUS / entry_id / meta["file"]


@pytest.mark.parametrize(
    "entry_id",
    [
        "e_other_csv_agri_loss_only_jumps_01",
        "e_pandas_csv_superpoint_3000_iters_01",
        "e_other_csv_transformer_mt_2205_steps_01",
    ],
)
def test_one_named_column_of_losses_is_one_point_per_row(entry_id):
    path = _file(entry_id)
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    expected = [float(row[0]) for row in rows[1:] if row]
    history = load_history(path)
    assert history.source.format == "keras_csv"
    assert history.epochs == list(range(1, len(expected) + 1))
    assert history.series["loss"] == pytest.approx(expected)


def test_a_headerless_table_of_two_rows_is_loss_then_val_loss_and_says_so():
    path = _file("e_other_csv_mnist_cuda_two_rows_01")
    train, valid = ([float(x) for x in line.split(",")] for line in path.read_text().split())
    history = load_history(path)
    assert history.epochs == list(range(1, 31))
    assert history.series["loss"] == pytest.approx(train)
    assert history.series["val_loss"] == pytest.approx(valid)
    assert any(
        "no header: one series per row, read as loss and val_loss" in note
        for note in history.source.notes
    )


def test_log_lines_opening_with_a_bracketed_time_stamp_are_a_log_and_nan_is_kept():
    path = _file("e_logging_text_ppasr_nan_batches_01")
    logged = re.findall(r"batch: \d+/\d+, loss: (\S+),", path.read_text())
    assert logged[:4] == ["6.70559", "6.64842", "6.76281", "6.61592"] and len(logged) == 9
    history = load_history(path)
    assert history.source.format == "text_log"
    assert history.epochs == [1]  # every line is a batch of epoch 0: their mean is epoch 1's
    assert math.isnan(history.series["loss"][0])
    assert history.series["lr"] == pytest.approx([0.0001])


def test_a_losses_group_gives_one_series_per_head_and_its_total_is_the_loss():
    path = _file("e_key_value_text_yolov3_total_nan_01")
    conf = [float(x) for x in re.findall(r"conf (\S+),", path.read_text())]
    history = load_history(path)
    assert history.epochs == [1]
    assert history.series["conf_loss"] == pytest.approx([sum(conf) / len(conf)])
    for head in ("loss", "x_loss", "y_loss", "w_loss", "h_loss", "cls_loss"):
        assert math.isnan(history.series[head][0]), head


def test_tensorboard_scalars_in_long_form_give_a_series_per_tag():
    path = _file("e_other_csv_tensorboard_export_vallex_01")
    by_tag: dict[str, dict[int, float]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            by_tag.setdefault(row["tag"], {}).setdefault(int(row["step"]), float(row["value"]))
    runs = load_histories(path)
    assert len(runs) == 1
    history = next(iter(runs.values()))
    assert history.source.format == "tensorboard"
    assert len(history.epochs) == len(by_tag["train/tot_loss"]) == 60
    tot = [by_tag["train/tot_loss"][step] for step in sorted(by_tag["train/tot_loss"])]
    current = [by_tag["train/current_loss"][step] for step in sorted(by_tag["train/current_loss"])]
    assert history.series["loss"] == pytest.approx(tot)  # the running total is the loss
    assert history.series["current_loss"] == pytest.approx(current)
    assert any("each of the 60 logged steps" in note for note in history.source.notes)
