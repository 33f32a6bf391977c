"""The CLI of the advisor's core: recommend, explain, schema, rules check/list.

Exit codes and output are checked exactly where they are a contract (errors,
``--json``), and by content where they are for people (summaries).  The
examples in each command's help are run as written, and docs/cli.md must be
the current ``--help`` text.
"""

from __future__ import annotations

import json
import os
import runpy
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.commands import cli
from advisor.contract.schemas import Plan
from advisor.expert.explaining import GROUPS
from advisor.expert.recommending import recommend

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "profiles" / "digits_mlp.json"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty folder with the project's examples visible, as a new user has them."""
    monkeypatch.chdir(tmp_path)
    os.symlink(ROOT / "examples", tmp_path / "examples")
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="advisor")


def written(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "examples")


# ----------------------------------------------------------------------------- recommend


def test_recommend_without_output_prints_a_grouped_summary_and_writes_nothing(workdir):
    result = run("recommend", "examples/profiles/digits_mlp.json")
    assert result.exit_code == 0
    text = result.output
    assert text.startswith(
        "Training plan for 'digits_mlp': multiclass, tabular input (64,), 1438 training examples"
    )
    for group in (
        "What the rules concluded",
        "Data",
        "Model",
        "Loss",
        "Optimizer and schedule",
        "Regularization",
        "Transfer",
        "Run",
    ):
        assert f"\n{group}" in text
    assert "  optimizer.name = adam\n      Adam adapts a step size per weight" in text
    assert "[optimizer_adam_default]" in text
    assert "\x1b[" not in text  # no colour codes when stdout is not a terminal
    assert written(workdir) == []


def test_recommend_output_writes_the_plan(workdir):
    result = run("recommend", "examples/profiles/digits_mlp.json", "-o", "plan.json")
    assert result.exit_code == 0
    plan = Plan.model_validate_json((workdir / "plan.json").read_text())
    assert result.output == f"wrote plan.json ({len(plan.explanations)} explained fields)\n"
    assert plan == recommend(DIGITS)


def test_recommend_json_prints_the_plan_for_scripts(workdir):
    result = run("recommend", "examples/profiles/digits_mlp.json", "--json")
    assert result.exit_code == 0
    assert Plan.model_validate_json(result.output) == recommend(DIGITS)
    assert written(workdir) == []


def test_recommend_with_extra_rules(workdir):
    (workdir / "team.toml").write_text(
        '[team_batch]\nrecommend = { "batch_size" = 64 }\npriority = 99\n'
        'reason = "Our GPUs like 64."\nsource = "team handbook"\n'
    )
    result = run("recommend", "examples/profiles/digits_mlp.json", "--rules", "team.toml", "--json")
    plan = Plan.model_validate_json(result.output)
    assert (plan.batch_size, plan.steps_per_epoch) == (64, 23)
    assert plan.explanations["batch_size"].rule == "team_batch"


def test_a_rule_error_is_one_line_and_exit_2(workdir):
    (workdir / "bad.toml").write_text('[broken]\nrecommend = { "batch_size" = 64 }\npriority = 1\n')
    result = run(
        "recommend", "examples/profiles/digits_mlp.json", "--rules", "bad.toml", "-o", "plan.json"
    )
    assert result.exit_code == 2
    assert (
        result.output == "error: bad.toml: [broken]: 'reason' is required (one sentence of text)\n"
    )
    assert written(workdir) == ["bad.toml"]


# ----------------------------------------------------------------------------- explain


@pytest.fixture
def plan_file(workdir):
    assert (
        run(
            "recommend", "examples/profiles/transfer_small_different.json", "-o", "plan.json"
        ).exit_code
        == 0
    )
    return workdir / "plan.json"


def test_explain_every_field(plan_file):
    result = run("explain", "plan.json")
    assert result.exit_code == 0
    plan = Plan.model_validate_json(plan_file.read_text())
    for path in plan.explanations:
        assert f"\n{path} = " in "\n" + result.output


def test_explain_one_field_shows_evidence_and_losers(plan_file):
    result = run("explain", "plan.json", "freeze.strategy")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[:2] == [
        "freeze.strategy = two_stage",
        "  rule:    transfer_refine_small_different_fine_tune",
    ]
    assert lines[2].startswith("  why:     Partial fine-tuning first, as the framework says")
    assert lines[3].startswith(
        "  source:  lecture 9.2, small + different -> partial fine-tuning; then lecture 10.1"
    )
    assert lines[4:6] == [
        "  matched: transfer_quadrant=small_different",
        "  won over: [freeze_small_different_partial] (priority 60), which wanted partial_fine_tune: Few examples "
        "from a new domain: keep the base's general early layers frozen and retrain only its top block, whose "
        "features are the most task-specific, with the head.",
    ]
    assert "[freeze_from_scratch_no_base]" not in result.output  # that rule did not match
    result = run("explain", "plan.json", "model.dropout")
    assert "  won over: [transfer_head_dropout] (priority 30), which wanted 0.3: " in result.output


def test_explain_a_derived_fact_and_a_group(plan_file):
    assert run("explain", "plan.json", "transfer_quadrant").output.startswith(
        "transfer_quadrant = small_different\n"
    )
    lines = run("explain", "plan.json", "freeze").output
    assert "freeze.strategy = " in lines and "freeze.trainable_blocks = 1" in lines


def test_explain_json(plan_file):
    result = run("explain", "plan.json", "optimizer.learning_rate", "--json")
    data = json.loads(result.output)
    assert data["optimizer.learning_rate"]["rule"] == "learning_rate_from_stage"
    assert data["optimizer.learning_rate"]["matched"] == {
        "lr.base": 0.001,
        "lr.stage_factor": 1.0,
    }  # two_stage


def test_explain_unknown_field_suggests_the_close_one(plan_file):
    result = run("explain", "plan.json", "optimizer.lr")
    assert result.exit_code == 2
    assert (
        result.output
        == "error: plan.json: 'optimizer.lr' has no explanation in this plan; did you mean 'optimizer.learning_rate'?\n"
    )


def test_explain_bad_plan_file(workdir):
    (workdir / "plan.json").write_text('{"task": "multiclass"}')
    result = run("explain", "plan.json")
    assert result.exit_code == 2
    assert result.output.startswith("error: plan.json: modality: required field is missing (and ")


# ----------------------------------------------------------------------------- schema, rules


@pytest.mark.parametrize("name", ["profile", "plan", "history", "diagnosis", "run"])
def test_schema_prints_a_json_schema(name):
    result = run("schema", name)
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["type"] == "object" and schema["additionalProperties"] is False


def test_schema_unknown_name_is_exit_2():
    result = run("schema", "profil")
    assert result.exit_code == 2
    assert (
        "'profil' is not one of 'profile', 'plan', 'history', 'diagnosis', 'run'" in result.output
    )


def test_rules_check_is_clean():
    result = run("rules", "check")
    assert result.exit_code == 0
    assert result.output.splitlines()[-1].endswith(" rules, 0 errors, 0 warnings")


def test_rules_check_reports_a_dead_rule(workdir):
    (workdir / "dead.toml").write_text(
        '[dead_rule]\nwhen = [{ fact = "n_train", lt = 10 }, { fact = "n_train", gt = 20 }]\n'
        'recommend = { "epochs" = 3 }\npriority = 5\nreason = "Never."\nsource = "test"\n'
        'example = { task = "regression", modality = "tabular", n_train = 15, input_shape = [2] }\n'
    )
    result = run("rules", "check", "--rules", "dead.toml")
    assert result.exit_code == 2
    assert (
        "dead.toml: [dead_rule] error: can never fire: no n_train is > 20 and < 10" in result.output
    )
    assert "dead.toml: [dead_rule] error: does not fire on its example" in result.output


def test_rules_list_shows_every_rule():
    result = run("rules", "list", "--domain", "recommend")
    assert result.exit_code == 0
    assert (
        "[freeze_small_similar_feature_extractor]  (40_transfer.toml, recommend, priority 60)"
        in result.output
    )
    assert (
        "  then: batch_size = min(pow2(clip(div(n_train, 50), 16, 256)), n_train)" in result.output
    )
    listed = json.loads(run("rules", "list", "--domain", "recommend", "--json").output)
    assert {"optimizer_adam_default", "loss_gan_wasserstein"} <= {r["id"] for r in listed}


# ----------------------------------------------------------------------------- help and docs


def help_of(*path: str) -> str:
    return run(*path, "--help").output


COMMANDS = [
    ("recommend",),
    ("explain",),
    ("schema",),
    ("rules",),
    ("rules", "check"),
    ("rules", "list"),
]


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_help_opens_with_an_example(path):
    body = help_of(*path).split("\n\n")
    assert body[2].lstrip().startswith("Example:"), (
        "the example comes right after the one-line summary"
    )
    assert body[2].splitlines()[1].strip().startswith("advisor " + " ".join(path[:1]))


@pytest.mark.parametrize(
    "path",
    [("recommend",), ("explain",), ("schema",), ("rules", "check"), ("rules", "list")],
    ids=["recommend", "explain", "schema", "rules check", "rules list"],
)
def test_help_examples_run_as_written(workdir, path):
    (workdir / "team_rules").mkdir()
    assert run("recommend", "examples/profiles/digits_mlp.json", "-o", "plan.json").exit_code == 0
    example = help_of(*path).split("Example:")[1].split("\n\n")[0]
    for line in example.strip().splitlines():
        words = shlex.split(line.split("#")[0].split(">")[0])
        assert words[0] == "advisor"
        result = run(*words[1:])
        assert result.exit_code == 0, f"{line}: {result.output}"


def test_docs_cli_md_is_current():
    module = runpy.run_path(str(ROOT / "docs" / "generate_cli.py"))
    assert (ROOT / "docs" / "cli.md").read_text() == module["render"](), (
        "run python docs/generate_cli.py"
    )


def test_summary_groups_cover_every_field():
    plan = recommend(DIGITS)
    from advisor.expert.explaining import group_of

    assert {group_of(path) for path in plan.explanations} <= set(GROUPS)
    assert group_of("model.dropout") == "regularization"
    assert group_of("model.base") == "transfer"
    assert group_of("model.units") == "model"


def read_through_a_terminal(*args: str) -> str:
    """Run ``advisor ARGS`` with stdout on a pseudo-terminal; return what it drew."""
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "140", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "advisor.cli.commands", *args],
        cwd=ROOT,
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(leader)
    assert proc.returncode == 0, proc.stderr.read().decode()
    return b"".join(chunks).decode("utf-8", "replace")


def test_on_a_terminal_the_summary_is_tables_in_colour():
    drawn = read_through_a_terminal("recommend", "examples/profiles/digits_mlp.json")
    assert "\x1b[" in drawn  # colour
    assert "━" in drawn or "─" in drawn  # table rules
    assert "optimizer.name" in drawn and "optimizer_adam_default" in drawn


def test_on_a_terminal_rules_and_explanations_render():
    assert "freeze_small_similar_feature_extractor" in read_through_a_terminal(
        "rules", "list", "--domain", "recommend"
    )
    drawn = read_through_a_terminal(
        "explain", "examples/plans/transfer_small_different.json", "model.dropout"
    )
    assert "won over" in drawn and "\x1b[" in drawn


def test_the_cli_bar_is_a_bar_factory_the_engine_can_draw_with():
    from advisor.cli.render import RichBar, bars
    from engine.outputs.progress import bar_factory

    assert bar_factory(RichBar) is RichBar and bars() is False  # pytest's stdout: no terminal
    bar = RichBar("epoch", 3, 1)
    bar.update(2, "loss 0.5")
    (task,) = bar.progress.tasks
    assert (task.total, task.completed, task.description) == (3, 2, "loss 0.5")
    bar.close()
    assert bar.progress.finished is False and not bar.progress.live.is_started
