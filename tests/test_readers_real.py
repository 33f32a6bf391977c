"""Readers on real published histories: pandas exports, notebooks, logging text, several
loss heads, per-step logs and folders of several runs.  Every input is a file from a
public project, either in the corpus (tests/corpus/entries/<id>/, labelled there) or in
tests/data/histories/real/ with its source URL beside it (<file>.source.txt)."""

from __future__ import annotations

import ast
import csv
import json
import math
import re
import shutil
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.commands import cli
from advisor.contract.errors import InputError
from advisor.readers import load_histories, load_history

ROOT = Path(__file__).parent
REAL = ROOT / "data" / "histories" / "real"
CORPUS = ROOT / "corpus" / "entries"


def _columns(path: Path) -> dict[str, list[str]]:
    """The file's columns as the csv module reads them (an independent parse)."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    return {name: [row[i] for row in rows[1:]] for i, name in enumerate(rows[0])}


def test_pandas_export_with_an_unnamed_index_column():
    path = REAL / "pandas_unnamed_index_ls_shuffle.csv"
    columns = _columns(path)
    history = load_history(path)
    assert history.source.format == "pandas_csv"
    # The index counts from 0; the History's epochs from 1, one per row.
    assert history.epochs == [int(i) + 1 for i in columns[""]]
    assert history.series["loss"] == [float(v) for v in columns["loss"]]
    assert history.series["val_accuracy"] == [float(v) for v in columns["val_acc"]]
    assert history.series["val_top5_accuracy"] == [float(v) for v in columns["val_top_k_acc"]]
    assert "time" not in history.series and "unnamed_0" not in history.series


def _lightning_runs(tmp_path: Path) -> Path:
    """A lightning_logs folder of two real runs (two corpus metrics.csv files) and a checkpoint."""
    first, second = (
        CORPUS / "b_lightning_csv_grapevine_01" / "metrics.csv",
        CORPUS / "b_lightning_csv_perstep_asl_01" / "metrics.csv",
    )
    for version, source in (("version_0", first), ("version_1", second)):
        folder = tmp_path / "lightning_logs" / version
        folder.mkdir(parents=True)
        shutil.copy(source, folder / "metrics.csv")
        (folder / "hparams.yaml").write_text("lr: 0.001\n")
    (tmp_path / "lightning_logs" / "version_1" / "checkpoints").mkdir()
    (tmp_path / "lightning_logs" / "version_1" / "checkpoints" / "last.ckpt").write_bytes(
        bytes(range(256)) * 8
    )
    return tmp_path


def test_a_folder_of_runs_is_never_merged(tmp_path):
    root = _lightning_runs(tmp_path)
    runs = load_histories(root)
    assert list(runs) == ["lightning_logs/version_0", "lightning_logs/version_1"]
    for name, history in runs.items():
        alone = load_history(root / name)  # the same run read from its own folder
        assert history.source.run == name
        assert history.epochs == alone.epochs and history.series.keys() == alone.series.keys()
    assert runs["lightning_logs/version_0"].series != runs["lightning_logs/version_1"].series
    with pytest.raises(InputError) as err:
        load_history(root)
    message = str(err.value)
    assert "holds 2 training runs" in message and "lightning_logs/version_1" in message
    assert "\n" not in message


def test_diagnose_gives_one_diagnosis_per_run_or_the_one_asked_for(tmp_path):
    root = _lightning_runs(tmp_path)
    runner = CliRunner()
    every = runner.invoke(cli, ["diagnose", str(root)])
    assert every.exit_code == 0, every.output
    assert "== run lightning_logs/version_0 (1 of 2) ==" in every.output
    assert "== run lightning_logs/version_1 (2 of 2) ==" in every.output
    as_json = json.loads(runner.invoke(cli, ["diagnose", str(root), "--json"]).output)
    assert {name: d["history"]["run"] for name, d in as_json.items()} == {
        "lightning_logs/version_0": "lightning_logs/version_0",
        "lightning_logs/version_1": "lightning_logs/version_1",
    }
    one = runner.invoke(cli, ["diagnose", str(root), "--run", "version_1"])
    assert one.exit_code == 0 and "==" not in one.output
    assert "version_1/metrics.csv" in one.output.splitlines()[0]
    unknown = runner.invoke(cli, ["diagnose", str(root), "--run", "version_7"])
    assert unknown.exit_code == 2
    assert "--run version_7: no such run" in unknown.output


def _entry(name: str) -> Path:
    """The history file of a corpus entry (its meta.toml names it)."""
    meta = tomllib.loads((CORPUS / name / "meta.toml").read_text())
    return CORPUS / name / meta["file"]


def test_python_logging_lines_with_bare_name_value_pairs():
    """'... - INFO - Train loss 0.71 accuracy 0.52' then 'Val loss 0.66 accuracy 0.64'."""
    path = REAL / "logging_run_log_ad_classifier.log"
    text = path.read_text()
    train = re.findall(r"INFO - Train loss (\S+) accuracy (\S+)", text)
    val = re.findall(r"INFO - Val loss (\S+) accuracy (\S+)", text)
    history = load_history(path)
    assert history.source.format == "text_log"
    assert history.epochs == list(range(1, 11))
    assert history.series["loss"] == [float(loss) for loss, _ in train]
    assert history.series["accuracy"] == [float(acc) for _, acc in train]
    assert history.series["val_loss"] == [float(loss) for loss, _ in val]
    assert history.series["val_accuracy"] == [float(acc) for _, acc in val]
    assert set(history.series) == {"loss", "accuracy", "val_loss", "val_accuracy"}  # no config


def _pipe_log(path: Path) -> tuple[dict[int, list[float]], dict[int, float]]:
    """Per-batch training losses and end-of-epoch validation losses of a word-LM log."""
    steps: dict[int, list[float]] = {}
    valid: dict[int, float] = {}
    for line in path.read_text().splitlines():
        batch = re.match(r"\| epoch +(\d+) \|.*\| loss +(\S+) \|", line)
        end = re.match(r"\| end of epoch +(\d+) \|.*\| valid loss +(\S+) \|", line)
        if batch:
            steps.setdefault(int(batch[1]), []).append(float(batch[2]))
        if end:
            valid[int(end[1])] = float(end[2])
    return steps, valid


def test_pipe_separated_per_batch_log_is_averaged_per_epoch():
    path = _entry("b_logging_text_wlm_gru_spike_01")
    steps, valid = _pipe_log(path)
    history = load_history(path)
    assert history.epochs == sorted(steps)
    assert history.series["loss"] == pytest.approx([sum(v) / len(v) for v in steps.values()])
    assert history.series["val_loss"] == [valid[e] for e in history.epochs]
    assert any("each epoch's is their mean" in note for note in history.source.notes)
    # The closing "End of training | test loss" line is one value, not a curve.
    assert "test_loss" not in history.series
    assert any(s.startswith("test_loss: logged once") for s in history.source.skipped)


def test_nan_tokens_are_kept_as_values():
    path = _entry("b_logging_text_wlm_rnn_relu_nan_01")
    steps, _ = _pipe_log(path)
    history = load_history(path)
    assert len(history.epochs) == len(steps) == 5
    assert all(math.isnan(v) for v in history.series["loss"])
    assert all(math.isnan(v) for v in history.series["val_loss"])


def test_comma_separated_step_lines_and_colon_pairs():
    """'epoch 1, phase train, step 10, loss_train, 0.838' and 'epoch 1 | val_loss: 0.659'."""
    path = _entry("b_key_value_text_mri_seg_01")
    text = path.read_text()
    steps: dict[int, list[float]] = {}
    for epoch, value in re.findall(r"epoch (\d+), phase train, step \d+, loss_train, (\S+)", text):
        steps.setdefault(int(epoch), []).append(float(value))
    val = [float(v) for v in re.findall(r"epoch \d+ \| val_loss: (\S+)", text)]
    history = load_history(path)
    assert history.series["loss"] == pytest.approx([sum(v) / len(v) for v in steps.values()])
    assert history.series["val_loss"] == val
    assert "end_time" not in history.series and "total_time" not in history.series


def test_several_loss_heads_are_summed_when_no_total_is_logged():
    path = _entry("b_other_csv_yolo_gallstone_seg_01")
    columns = _columns(path)
    heads = ["train/box_loss", "train/seg_loss", "train/cls_loss", "train/dfl_loss"]
    history = load_history(path)
    expected = [sum(float(columns[h][i]) for h in heads) for i in range(len(columns["epoch"]))]
    assert history.series["loss"] == pytest.approx(expected)
    assert history.series["box_loss"] == [float(v) for v in columns["train/box_loss"]]
    assert history.series["val_loss"] == pytest.approx(
        [
            sum(float(columns[h.replace("train/", "val/")][i]) for h in heads)
            for i in range(len(columns["epoch"]))
        ]
    )
    assert any(
        "the sum of box_loss + cls_loss + dfl_loss + seg_loss" in n for n in history.source.notes
    )


def test_a_logged_total_loss_stays_the_primary_loss():
    """Mask R-CNN logs 'loss' beside its heads (rpn_class_loss, mrcnn_bbox_loss ...)."""
    path = _entry("a_keras_console_maskrcnn_heads_nan_1997")
    totals = re.findall(r" - loss: (\S+)", path.read_text())
    history = load_history(path)
    assert any(name.startswith("rpn_") for name in history.series)
    assert history.series["loss"][: len(totals)] == pytest.approx(
        [float(v) for v in totals], nan_ok=True
    )
    assert not any("no total logged" in note for note in history.source.notes)


def test_validation_zeros_of_an_unevaluated_split_are_missing():
    """Ultralytics writes 0 for every validation head at the epochs it did not validate."""
    path = _entry("b_other_csv_yolo_drone_valonce_01")
    columns = _columns(path)
    history = load_history(path)
    evaluated = [i for i, v in enumerate(columns["val/box_loss"]) if float(v) != 0.0]
    assert evaluated == [len(history.epochs) - 1]
    assert history.series["val_loss"][:-1] == [None] * (len(history.epochs) - 1)
    assert history.series["val_loss"][-1] == pytest.approx(
        sum(float(columns[f"val/{h}_loss"][-1]) for h in ("box", "cls", "dfl"))
    )
    assert all(v is not None for v in history.series["loss"])


def test_series_of_unequal_length_keep_their_own_epochs():
    """Validation every epoch, the training loss only every 50 steps (about every 9 epochs)."""
    path = _entry("b_lightning_csv_cnn1d_140ep_01")
    columns = _columns(path)
    train = {
        int(e) + 1: float(v)
        for e, v in zip(columns["epoch"], columns["train_loss"], strict=True)
        if v
    }
    history = load_history(path)
    logged = {
        e: v for e, v in zip(history.epochs, history.series["loss"], strict=True) if v is not None
    }
    assert logged == train
    assert len(train) < sum(v is not None for v in history.series["val_loss"])


def _means_by_epoch(path: Path, column: str) -> list[float]:
    columns = _columns(path)
    by_epoch: dict[int, list[float]] = {}
    for epoch, value in zip(columns["epoch"], columns[column], strict=True):
        if value:
            by_epoch.setdefault(int(epoch), []).append(float(value))
    return [sum(v) / len(v) for _, v in sorted(by_epoch.items())]


def test_lightning_step_rows_are_averaged_per_epoch_and_a_partial_epoch_is_noted():
    """Lightning before 1.0: no step column, one row per batch; the last epoch ran 4 batches."""
    path = _entry("b_lightning_csv_exoplanet_overfit_01")
    history = load_history(path)
    assert history.source.format == "lightning_csv"
    assert history.series["loss"] == pytest.approx(_means_by_epoch(path, "train_loss"))
    assert history.series["val_loss"][:-1] == pytest.approx(_means_by_epoch(path, "val_loss"))
    assert history.series["val_loss"][-1] is None
    assert any(n.startswith(f"epoch {history.epochs[-1]} is partial") for n in history.source.notes)


def test_lightning_epoch_values_win_over_step_values():
    path = _entry("b_lightning_csv_perstep_asl_01")
    history = load_history(path)
    columns = _columns(path)
    epoch_values = [float(v) for v in columns["train_loss_epoch"] if v]
    assert history.series["loss"] == epoch_values


def test_hugging_face_logs_are_averaged_per_epoch():
    path = _entry("b_hf_trainer_state_lora_imdb_01")
    logs = json.loads(path.read_text())["log_history"]
    by_epoch: dict[int, list[float]] = {}
    for entry in logs:
        if "loss" in entry:
            by_epoch.setdefault(math.ceil(entry["epoch"] - 1e-9), []).append(entry["loss"])
    history = load_history(path)
    assert history.epochs == sorted(by_epoch) == [1, 2, 3]
    assert history.series["loss"] == pytest.approx([sum(v) / len(v) for v in by_epoch.values()])
    assert history.source.notes == []  # three whole epochs: nothing partial


def test_hugging_face_checkpoint_inside_an_epoch_is_kept_and_marked_partial():
    path = REAL / "hf_checkpoint_partial_epoch_bert.json"
    logs = json.loads(path.read_text())["log_history"]
    losses = [e["loss"] for e in logs if "loss" in e]
    history = load_history(path)
    assert history.epochs == [1]
    assert history.series["loss"] == [pytest.approx(sum(losses) / len(losses))]
    assert history.series["val_loss"] == [logs[-1]["eval_loss"]]
    assert any(
        n.startswith("epoch 1 is partial: training stopped at epoch 0.067")
        for n in history.source.notes
    )


def test_keras_console_partial_last_epoch_is_noted():
    path = _entry("a_keras_console_mnist_convnet_kerasio")
    history = load_history(path)
    assert history.epochs[-1] == 12
    assert history.series["val_loss"][-1] is None  # the epoch never reached validation
    partial = "epoch 12 is partial: the log stops at step 237 of 422"
    assert any(note.startswith(partial) for note in history.source.notes)


def test_keras_output_in_a_notebook_cell():
    path = _entry("a_ipynb_dlwp_imdb_dense_01")
    cells = json.loads(path.read_text())["cells"]
    printed = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
    losses = [float(v) for v in re.findall(r" - loss: (\S+)", printed)]
    val = [float(v) for v in re.findall(r" - val_loss: (\S+)", printed)]
    history = load_history(path)
    assert history.source.format == "ipynb"
    assert history.series["loss"] == losses and history.series["val_loss"] == val
    assert len(history.epochs) == 20


def test_a_notebook_cell_printing_its_hyper_parameters_before_the_epochs():
    """The cell prints a dict of hyper-parameters first and a stderr warning inside epoch 1."""
    path = _entry("e_ipynb_breast_cancer_tuned_01")
    outputs = json.loads(path.read_text())["cells"][0]["outputs"]
    printed = "".join("".join(o.get("text", "")) for o in outputs)
    assert printed.startswith("{'layer_1'")
    history = load_history(path)
    assert history.source.format == "ipynb"
    assert history.series["loss"] == [float(v) for v in re.findall(r" - loss: (\S+)", printed)]
    assert history.series["val_loss"] == [
        float(v) for v in re.findall(r" - val_loss: (\S+)", printed)
    ]
    assert len(history.epochs) == len(re.findall(r"^Epoch \d+/100", printed, re.MULTILINE))


def test_a_notebook_with_several_runs_gives_one_history_per_run():
    """Two fastai fine_tune tables (HTML) and a printed 5-step loop, from one notebook."""
    path = REAL / "fastai_pets_three_runs.ipynb"
    cells = json.loads(path.read_text())["cells"]
    runs = load_histories(path)
    assert list(runs) == ["cell 1", "cell 2", "cell 3"]
    for index, name in enumerate(("cell 1", "cell 2")):
        html = "".join(cells[index]["outputs"][0]["data"]["text/html"])
        rows = re.findall(
            r"<td>(\d+)</td>\s*<td>([\d.]+)</td>\s*<td>([\d.]+)</td>\s*<td>([\d.]+)</td>", html
        )
        history = runs[name]
        assert history.source.run == name and history.source.format == "ipynb"
        assert history.epochs == [int(r[0]) + 1 for r in rows]  # fastai counts from 0
        assert history.series["loss"] == [float(r[1]) for r in rows]
        assert history.series["val_loss"] == [float(r[2]) for r in rows]
        # fastai's metrics are validation metrics: error_rate, and accuracy from it.
        assert history.series["val_error_rate"] == [float(r[3]) for r in rows]
        assert history.series["val_accuracy"] == pytest.approx([1 - float(r[3]) for r in rows])
    loop = runs["cell 3"]
    printed = "".join(cells[2]["outputs"][0]["text"])
    assert loop.series["loss"] == [float(v) for v in re.findall(r"loss=(\S+)", printed)]
    assert any("no epoch numbers" in note for note in loop.source.notes)
    last = load_history(path)  # one history: the last run, with a note naming the others
    assert last.series == loop.series
    assert any("holds 3 training runs" in note for note in last.source.notes)


def test_diagnose_gives_one_diagnosis_per_notebook_run():
    result = CliRunner().invoke(cli, ["diagnose", str(REAL / "fastai_pets_three_runs.ipynb")])
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line.startswith("== run")] == [
        "== run cell 1 (1 of 3) ==",
        "== run cell 2 (2 of 3) ==",
        "== run cell 3 (3 of 3) ==",
    ]


def test_evaluation_after_fit_is_not_an_epoch():
    """A trainer.validate() call after fit logs at the next epoch with no training values."""
    path = _entry("b_lightning_csv_clf_valdup_01")
    columns = _columns(path)
    trained = {int(e) for e, v in zip(columns["epoch"], columns["train_loss"], strict=True) if v}
    history = load_history(path)
    assert history.epochs == [e + 1 for e in sorted(trained)]
    assert any("after the last training epoch" in s for s in history.source.skipped)


@pytest.mark.parametrize(
    "name",
    [
        "b_lightning_csv_eurosat_valonly_01",  # only a validation loss
        "b_lightning_csv_mnist_01",  # 3 epochs
        "b_logging_text_wlm_rnn_relu_nan_01",  # every loss NaN
        "b_hf_trainer_state_bert_rumor_100ep_01",  # no evaluation at all
        "b_lightning_csv_acc_only_01",  # only a validation accuracy
        "b_lightning_csv_oneepoch_01",  # one epoch
    ],
)
def test_every_readable_history_diagnoses_with_exit_0(name):
    result = CliRunner().invoke(cli, ["diagnose", str(_entry(name))])
    assert result.exit_code == 0, result.output


def test_a_python_repr_of_the_keras_history_saved_as_a_json_string():
    """json.dump(str(history.history), f): one JSON string holding a single-quoted dict."""
    path = _entry("a_keras_json_video_lstm_reprstring_01")
    table = ast.literal_eval(json.loads(path.read_text()))
    history = load_history(path)
    assert history.source.format == "keras_json"
    assert history.series["loss"] == table["loss"]
    assert history.series["val_accuracy"] == table["val_accuracy"]


def test_loguru_fields_with_bracketed_names_and_short_epoch_marks():
    """'| E6 iter[ 14/ 15] | [Loss] nan |': epochs as E<n>, the name in brackets."""
    path = _entry("b_logging_text_lion_loguru_nan_01")
    found = re.findall(r"\| E(\d+) iter.*?\| \[Loss\] (\S+) \|", path.read_text())
    history = load_history(path)
    assert history.epochs == [int(epoch) for epoch, _ in found]
    assert history.series["loss"] == pytest.approx([float(v) for _, v in found], nan_ok=True)
    assert math.isnan(history.series["loss"][-1])


def test_pytorch_tutorial_progress_lines_without_names():
    """'35000 35% (1m 4s) nan Nam / Russian': the unnamed number is the loss."""
    path = _entry("b_logging_text_charrnn_tutorial_nan_01")
    printed = re.findall(r"^\d+ \d+% \([^)]*\) (\S+)", path.read_text(), re.MULTILINE)
    history = load_history(path)
    assert len(history.epochs) == len(printed)
    assert history.series["loss"] == pytest.approx([float(v) for v in printed], nan_ok=True)
    assert any("read as the loss" in note for note in history.source.notes)


def test_keras_fits_in_several_cells_are_separate_runs_and_evaluate_is_not_an_epoch():
    path = REAL / "keras_newswires_three_fits.ipynb"
    cells = json.loads(path.read_text())["cells"]
    runs = load_histories(path)
    assert list(runs) == ["cell 1", "cell 2", "cell 3"]
    for cell, history in zip(cells, runs.values(), strict=True):
        printed = "".join("".join(o.get("text", "")) for o in cell["outputs"])
        epochs = re.findall(r"^Epoch \d+/(\d+)", printed, re.MULTILINE)
        assert len(history.epochs) == int(epochs[0])
        assert history.series["val_loss"] == [
            float(v) for v in re.findall(r" - val_loss: (\S+)", printed)
        ]
    # model.evaluate's bar (another length) after the 8 epochs is not epoch 8's value.
    second = runs["cell 2"]
    assert any("an evaluation after training" in s for s in second.source.skipped)


def test_a_folder_of_tensorboard_runs_gives_one_history_per_run(tmp_path):
    """Keras' train/ and validation/ event folders are one run; sibling run folders are not."""
    shutil.copytree(REAL / "tb_keras", tmp_path / "logs" / "fit_a")
    shutil.copytree(REAL / "tb_pytorch", tmp_path / "logs" / "fit_b")
    runs = load_histories(tmp_path)
    assert list(runs) == ["logs/fit_a", "logs/fit_b"]
    for name, original in (("logs/fit_a", "tb_keras"), ("logs/fit_b", "tb_pytorch")):
        alone = load_history(REAL / original)
        assert runs[name].series == alone.series and runs[name].source.run == name
    result = CliRunner().invoke(cli, ["diagnose", str(tmp_path), "--run", "fit_b"])
    assert result.exit_code == 0 and "fit_b" in result.output.splitlines()[0]


def test_event_sub_folders_beside_a_runs_own_event_file_belong_to_that_run(tmp_path):
    """PyTorch's add_scalars writes <tag>_<phase>/ folders next to the run's event file."""
    run = tmp_path / "runs" / "exp1"
    run.mkdir(parents=True)
    pytorch_file = next((REAL / "tb_pytorch").iterdir())
    keras_val = next((REAL / "tb_keras" / "validation").iterdir())
    shutil.copy(pytorch_file, run / pytorch_file.name)
    (run / "epoch_loss_val").mkdir()
    shutil.copy(keras_val, run / "epoch_loss_val" / keras_val.name)
    runs = load_histories(tmp_path)
    assert list(runs) == ["runs/exp1"]
    assert "val_accuracy" in runs["runs/exp1"].series  # from the run's own file (Accuracy/val)
    assert runs["runs/exp1"].source.format == "tensorboard"


def test_csvlogger_appending_a_second_run_gives_two_histories(tmp_path):
    """CSVLogger(append=True) writes the next run's rows, from epoch 0, below the last."""
    first = _entry("a_keras_csv_distracted_driver_01")
    text = first.read_text()
    appended = tmp_path / "log.csv"
    appended.write_text(text + "".join(text.splitlines(keepends=True)[1:]))
    runs = load_histories(appended)
    alone = load_history(first)
    assert list(runs) == ["run 1", "run 2"]
    assert all(run.series == alone.series and run.epochs == alone.epochs for run in runs.values())
    assert any("holds 2 training runs" in n for n in load_history(appended).source.notes)


def test_a_console_log_of_several_fits_gives_one_history_per_fit(tmp_path):
    """The three fits of a notebook printed into one log: the epoch count starts again."""
    cells = json.loads((REAL / "keras_newswires_three_fits.ipynb").read_text())["cells"]
    log = tmp_path / "console.log"
    log.write_text("".join("".join(o.get("text", "")) for c in cells for o in c["outputs"]))
    runs = load_histories(log)
    assert [len(h.epochs) for h in runs.values()] == [20, 8, 20]
    notebook = load_histories(REAL / "keras_newswires_three_fits.ipynb")
    for from_log, from_notebook in zip(runs.values(), notebook.values(), strict=True):
        assert from_log.series["val_loss"] == from_notebook.series["val_loss"]
    result = CliRunner().invoke(cli, ["diagnose", str(log)])
    assert result.exit_code == 0 and result.output.count("== run") == 3


def test_fastai_table_in_a_notebook_exported_to_markdown():
    path = REAL / "fastai_football_markdown_export.md"
    cell = r"\s*<td>([\d.]+)</td>"
    rows = re.findall(r"<td>(\d+)</td>" + cell * 3, path.read_text())
    history = load_history(path)
    assert history.source.format == "fastai_table"
    assert history.epochs == [int(r[0]) + 1 for r in rows] == list(range(1, 31))
    assert history.series["loss"] == [float(r[1]) for r in rows]
    assert history.series["val_loss"] == [float(r[2]) for r in rows]
    assert history.series["val_error_rate"] == [float(r[3]) for r in rows]


def test_a_resumed_run_in_one_csvlogger_file_stays_one_run():
    """The epoch column starts again at 0 but the loss goes on from where it stopped."""
    path = _entry("b_other_csv_gru_denoise_resumed_01")
    columns = _columns(path)
    runs = load_histories(path)
    assert len(runs) == 1
    (history,) = runs.values()
    assert history.epochs == list(range(1, len(columns["epoch"]) + 1))
    assert history.series["loss"] == [float(v) for v in columns["loss"]]
    assert any("a resumed run" in note for note in history.source.notes)


def test_csvlogger_rows_of_one_epoch_fits_are_counted_in_order():
    """Every row says epoch 0 (fit(epochs=1) called again and again): no merge, no averaging."""
    path = _entry("a_keras_csv_bricks_epoch0_3rows_01")
    columns = _columns(path)
    history = load_history(path)
    assert history.source.format == "keras_csv"
    assert history.epochs == [1, 2, 3]
    assert history.series["loss"] == [float(v) for v in columns["loss"]]


def test_detectron2_metrics_json_lines():
    """One JSON object per logged iteration; total_loss is the loss, its heads stay series."""
    path = REAL / "detectron2_metrics_maskrcnn.json"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    history = load_history(path)
    assert history.source.format == "json_lines"
    assert len(history.epochs) == len(rows)
    assert history.series["loss"] == [row["total_loss"] for row in rows]
    assert history.series["loss_cls"] == [row["loss_cls"] for row in rows]
    assert not any("no total logged" in note for note in history.source.notes)
    assert any("each logged iteration is one point" in n for n in history.source.notes)
    assert "eta_seconds" not in history.series and "data_time" not in history.series


def test_lines_after_training_do_not_change_the_last_epoch(tmp_path):
    """EarlyStopping names the best epoch, then evaluate() prints a bar of its own."""
    path = _entry("a_keras_console_cifar_stuck_8680")
    text = path.read_text()
    bar = next(line for line in text.splitlines() if re.match(r"\s*\d+/\d+ \[", line))
    after = tmp_path / "log.txt"
    after.write_text(
        text.rstrip("\n")
        + "\nRestoring model weights from the end of the best epoch: 2.\n"
        + bar.replace(" - val_", " - other_")  # a complete bar again: the evaluation
        + "\n"
    )
    alone, extended = load_history(path), load_history(after)
    assert extended.epochs == alone.epochs
    assert extended.series["loss"] == alone.series["loss"]
    assert any("an evaluation after training" in s for s in extended.source.skipped)


def test_history_files_side_by_side_are_a_run_each(tmp_path):
    shutil.copy(_entry("a_keras_csv_distracted_driver_01"), tmp_path / "exp1.csv")
    shutil.copy(REAL / "pandas_unnamed_index_ls_shuffle.csv", tmp_path / "exp2.csv")
    runs = load_histories(tmp_path)
    assert list(runs) == ["exp1.csv", "exp2.csv"]
    assert runs["exp2.csv"].series == load_history(tmp_path / "exp2.csv").series
    with pytest.raises(InputError, match="holds 2 training runs"):
        load_history(tmp_path)


def test_key_value_epoch_lines_are_epochs_and_their_closing_line_gives_the_values():
    """c_key_value_text_safety_3ep_01: 'epoch=1 step=200 train_loss=... val_loss=...' every
    200 steps, then 'epoch_end=1 train_loss=... val_loss=...': three epochs, not 22 points."""
    path = _entry("c_key_value_text_safety_3ep_01")
    text = path.read_text()
    closing = re.findall(r"epoch_end=(\d+) train_loss=([\d.]+) val_loss=([\d.]+)", text)
    history = load_history(path)
    assert history.epochs == [int(epoch) for epoch, _, _ in closing] == [1, 2, 3]
    assert history.series["loss"] == [float(loss) for _, loss, _ in closing]
    assert history.series["val_loss"] == [float(val) for _, _, val in closing]
    assert set(history.series) == {"loss", "val_loss"}  # 'epoch_end' counts, it is no metric
