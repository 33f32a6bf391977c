"""Every example plan runs end to end with ``advisor run`` on CPU, or is marked advice only.

Each plan is run as its file says, cut down so the suite stays quick: two epochs (after
its warmup, and one head epoch for two_stage), a small
training slice (and small generated sets), a two-trial search where the plan has one, and
the example base built by the ``digits_base`` fixture where the plan names
``runs/bases/digits_0to4``.  An advice-only plan (``data.source`` null) must be skipped by
``advisor run`` with one line and exit 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.commands import cli

ROOT = Path(__file__).resolve().parent.parent
PLANS = sorted((ROOT / "examples" / "plans").glob("*.json"))
EPOCHS = 2
GENERATED = ("shapes", "shapes_detection", "digits_detection")


def _quick(plan: dict, base: Path) -> dict:
    """The plan cut down for a smoke run (same task, model, loss, optimizer and data kind)."""
    plan = json.loads(json.dumps(plan))
    # a warmup keeps its length, and trains EPOCHS more (after one head epoch for two_stage)
    head = 1 if plan["freeze"].get("head_epochs") else 0
    plan["epochs"] = head + plan["schedule"]["warmup_epochs"] + EPOCHS
    source = plan["data"]["source"]
    if source["name"] in GENERATED:
        source["n_samples"] = 240
    source["subsample"] = 96
    if plan["model"].get("base") == "runs/bases/digits_0to4":
        plan["model"]["base"] = str(base)
    if plan["freeze"].get("head_epochs"):  # two_stage: one head epoch, one fine-tuning epoch
        plan["freeze"]["head_epochs"] = 1
    if plan.get("search"):
        plan["search"].update(n_trials=2, epochs_per_trial=1)
    return plan


@pytest.mark.slow
@pytest.mark.parametrize("path", PLANS, ids=[p.stem for p in PLANS])
def test_example_plan_runs_or_is_advice_only(path, tmp_path, request):
    plan = json.loads(path.read_text())
    if plan["data"]["source"] is None:  # advice only: advisor run says so and succeeds
        result = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / "run")])
        assert result.exit_code == 0 and "advice only" in result.output
        assert not (tmp_path / "run").exists()
        return
    base = request.getfixturevalue("digits_base") if plan["model"].get("base") else None
    quick = tmp_path / path.name
    small = _quick(plan, base)
    quick.write_text(json.dumps(small))
    result = CliRunner().invoke(
        cli, ["run", str(quick), "--out", str(tmp_path / "run"), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["epochs"] == list(range(1, small["epochs"] + 1))
    assert (tmp_path / "run" / "diagnosis.json").exists()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "val_loss" in metrics and all(
        f"val_{m}" in metrics or any(k.startswith(f"val_{m}_") for k in metrics)
        for m in plan["metrics"]
    )


def test_advice_only_plan_is_skipped_with_one_line_exit_0(tmp_path):
    plan = json.loads((ROOT / "examples" / "plans" / "digits_mlp.json").read_text())
    plan["data"]["source"] = None
    path = tmp_path / "advice.json"
    path.write_text(json.dumps(plan))
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0
    assert result.output == (
        f"{path}: advice only (data.source is null: the plan names no data), so there is "
        "nothing to train; set data.source to run it\n"
    )
    assert not (tmp_path / "run").exists()
