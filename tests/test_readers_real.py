"""Readers on real published histories: pandas exports, notebooks, logging text, several
loss heads, per-step logs and folders of several runs.  Every input is a file from a
public project, either in the corpus (tests/corpus/entries/<id>/, labelled there) or in
tests/data/histories/real/ with its source URL beside it (<file>.source.txt)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli import cli
from advisor.errors import InputError
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
