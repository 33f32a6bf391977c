"""The ``advisor run`` command: exit codes, the summary, --json, one-line errors."""

from __future__ import annotations

import json

from click.testing import CliRunner

from advisor.cli.commands import cli
from advisor.contract.schemas import RunResult
from tests.engine_plans import make_plan


def _write(tmp_path, plan):
    path = tmp_path / "plan.json"
    path.write_text(plan.model_dump_json())
    return path


def test_run_prints_a_summary(tmp_path):
    path = _write(tmp_path, make_plan(epochs=1))
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"run: {out}  (device cpu")  # epoch lines go to stderr
    assert "validation: val_accuracy " in result.output
    assert (out / "history.json").exists()


def test_run_json_is_the_run_result(tmp_path):
    path = _write(tmp_path, make_plan(epochs=1))
    result = CliRunner().invoke(
        cli, ["run", str(path), "--out", str(tmp_path / "r"), "--json", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    parsed = RunResult.model_validate(json.loads(result.stdout))
    assert parsed.run_dir == str(tmp_path / "r") and parsed.next_plan is not None


def test_unknown_loss_is_one_line_and_exit_2(tmp_path):
    data = json.loads(make_plan().model_dump_json())
    data["loss"]["name"] = "cross_entropy"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(cli, ["run", str(path)])
    assert result.exit_code == 2
    assert result.output.startswith(
        f"error: {path}: loss.name: 'cross_entropy' is not allowed; expected one of "
    )
    assert result.output.count("\n") == 1


def test_missing_data_path_is_exit_2_and_writes_nothing(tmp_path):
    path = _write(
        tmp_path, make_plan(**{"data.source": {"kind": "csv", "path": "gone.csv", "target": "y"}})
    )
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert (
        result.output
        == f"error: data.source.path: {tmp_path / 'gone.csv'} does not exist; expected the csv data there\n"
    )
    assert not (tmp_path / "out").exists()


def test_a_device_that_is_not_there_is_exit_1(tmp_path):
    path = _write(tmp_path, make_plan())
    result = CliRunner().invoke(cli, ["run", str(path), "--device", "tpu"])
    assert result.exit_code == 1
    assert (
        result.output
        == "error: device: 'tpu' is not available to JAX (it sees cpu); use --device auto or cpu\n"
    )


def test_run_reports_the_tree_baseline_beside_the_network(tmp_path):
    path = _write(tmp_path, make_plan(epochs=1, baselines=["hist_gradient_boosting"]))
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("baseline "))
    assert line.startswith("baseline hist_gradient_boosting, same split: accuracy ")
    assert "(network " in line
    recorded = RunResult.model_validate_json((out / "run.json").read_text()).baselines
    assert 0.0 <= recorded["hist_gradient_boosting"]["val_accuracy"] <= 1.0
