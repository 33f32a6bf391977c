"""``advisor diagnose HISTORY [--plan PLAN] [-o NEXT_PLAN] [--json]`` through click."""

from __future__ import annotations

import json

from click.testing import CliRunner
from diagnosis_support import HISTORIES, hand, plan

from advisor.cli.commands import cli
from advisor.contract.loading import load_plan
from advisor.contract.schemas import Diagnosis


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_prints_the_problems_in_a_few_lines():
    result = invoke("diagnose", hand("overfitting_rise_00"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{hand('overfitting_rise_00')} (keras_json, 33 epochs): overfitting"
    assert lines[1].startswith("  overfitting [warning] epochs ")
    assert "val_loss.rise_from_best" in lines[2]
    assert len(lines) <= 6


def test_json_is_the_diagnosis_model():
    result = invoke("diagnose", hand("diverged_nan_00"), "--json")
    assert result.exit_code == 0
    diagnosis = Diagnosis.model_validate_json(result.output)
    assert {p.name for p in diagnosis.problems} == {"diverged", "lr_too_high"}
    assert diagnosis.history.format == "keras_csv"


def test_plan_and_output_write_the_revised_plan_that_explain_justifies(tmp_path):
    plan_path, next_path = tmp_path / "plan.json", tmp_path / "next_plan.json"
    plan_path.write_text(plan().model_dump_json(indent=2))
    result = invoke("diagnose", hand("lr_too_high_spikes_00"), "--plan", plan_path, "-o", next_path)
    assert result.exit_code == 0, result.output
    assert f"fixes -> {next_path}:" in result.output
    assert (
        "optimizer.learning_rate: 0.001 -> 0.0003  (lr_too_high, fix_lr_too_high_lower)"
        in result.output
    )
    revised = load_plan(next_path)
    assert revised.optimizer.learning_rate == 0.0003
    explained = invoke("explain", next_path, "optimizer.learning_rate")
    assert explained.exit_code == 0, explained.output
    assert "fix_lr_too_high_lower" in explained.output


def test_json_with_a_plan_lists_the_fixes(tmp_path):
    # the history ran all 23 of the plan's epochs and was still improving: twice as many
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(plan(epochs=23).model_dump_json())
    result = invoke("diagnose", hand("not_converged_00"), "--plan", plan_path, "--json")
    fixes = json.loads(result.output)["fixes"]
    assert [(f["field"], f["old"], f["new"]) for f in fixes] == [("epochs", 23, 46)]


def test_a_run_cut_short_is_told_to_finish_not_given_more_epochs(tmp_path):
    # the same 23 epochs from a plan of 30 without early stopping: the run was interrupted
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(plan(epochs=30).model_dump_json())
    result = invoke("diagnose", hand("not_converged_00"), "--plan", plan_path, "--json")
    diagnosis = json.loads(result.output)
    assert diagnosis["fixes"] == []
    assert [a["name"] for a in diagnosis["advice"]] == ["finish_run"]


def test_output_without_a_plan_is_refused(tmp_path):
    result = invoke("diagnose", hand("healthy_00"), "-o", tmp_path / "next.json")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: -o/--output: a revised plan needs --plan PLAN, the plan that produced the history"
    ]
    assert not (tmp_path / "next.json").exists()


def test_unusable_history_is_one_line_and_exit_2(tmp_path):
    result = invoke("diagnose", HISTORIES / "edge" / "plain.txt")
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and "plain.txt: not a training history" in line
    missing = invoke("diagnose", tmp_path / "nope.csv")
    assert missing.exit_code == 2 and "nope.csv: no such file" in missing.output


def test_a_bad_plan_writes_nothing(tmp_path):
    bad = tmp_path / "plan.json"
    bad.write_text('{"task": "multiclass"}')
    result = invoke("diagnose", hand("healthy_00"), "--plan", bad, "-o", tmp_path / "next.json")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "next.json").exists()


def test_skipped_input_is_reported():
    result = invoke("diagnose", HISTORIES / "edge" / "tfevents_truncated.tfevents")
    assert result.exit_code == 0
    assert "skipped: " in result.output and "record cut off (file truncated)" in result.output


def test_help_examples_run_as_written(tmp_path, monkeypatch):
    import shlex
    from pathlib import Path

    (tmp_path / "examples").symlink_to(Path(__file__).parents[1] / "examples")
    monkeypatch.chdir(tmp_path)
    example = invoke("diagnose", "--help").output.split("Example:")[1].split("\n\n")[0]
    lines = [line.strip() for line in example.strip().splitlines()]
    assert len(lines) == 2
    for line in lines:
        words = shlex.split(line)
        assert words[0] == "advisor"
        result = invoke(*words[1:])
        assert result.exit_code == 0, f"{line}: {result.output}"
        assert ": overfitting" in result.output.splitlines()[0]
    assert (tmp_path / "next_plan.json").exists()


def test_task_and_classes_set_the_chance_level_without_a_plan():
    path = HISTORIES / "hand" / "underfitting_chance_01.json"
    result = invoke("diagnose", path, "--task", "multiclass", "--classes", "10", "--json")
    told = json.loads(result.output)
    assert told["primary"] == "underfitting" and told["features"]["curve.chance_source"] == "given"
    # Without them the run is not called healthy: it is judged on what the history shows.
    blind = json.loads(invoke("diagnose", path, "--json").output)
    assert blind["primary"] != "healthy"
