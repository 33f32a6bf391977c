"""advisor auto: the policy file, pruning, budgets, the CLI's refusals, and a real lineage
on a bundled dataset whose first plan has a learning rate far too high."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from diagnosis_support import example_plan

from advisor.contract.errors import InputError
from advisor.contract.io import write_model
from advisor.contract.schemas import (
    AutoBudget,
    BuiltinData,
    Lineage,
    LineageRound,
    Profile,
    SearchParam,
)
from advisor.contract.vocabulary import PROBLEMS
from advisor.workflows.designing import (
    _bound,
    _Loop,
    _stepped,
    load_policy,
    parse_duration,
    plan_diff,
)

IRIS_LIKE = {
    "task": "multiclass",
    "modality": "tabular",
    "n_train": 120,
    "n_val": 30,
    "input_shape": [4],
    "n_classes": 3,
}


def test_policy_entries_carry_a_reason_and_a_source():
    policy = load_policy()
    entries = [*policy.selection, policy.stopping, *policy.prune]
    assert len({e.id for e in entries}) == len(entries)
    for entry in entries:
        assert entry.reason.strip() and entry.source.strip(), entry.id
    for prune in policy.prune:
        assert set(prune.problems) <= set(PROBLEMS), prune.id
    lr_high = [p for p in policy.prune if "lr_too_high" in p.problems]
    assert [(p.field, p.keep) for p in lr_high] == [("optimizer.learning_rate", "at_most")]


@pytest.mark.parametrize(
    ("text", "seconds"), [("20m", 1200), ("90s", 90), ("1h30m", 5400), ("0.5h", 1800)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["20", "5x", "", "0m", "m"])
def test_a_duration_needs_a_unit(text):
    with pytest.raises(InputError, match="--budget"):
        parse_duration(text)


def test_bounds_keep_the_fixed_side_of_the_current_value():
    rate = SearchParam(type="float", low=1e-4, high=1e-1, log=True)
    assert _bound(rate, "at_most", 0.01).high == 0.01
    assert _bound(rate, "at_least", 0.01).low == 0.01
    assert _bound(rate, "at_most", 1e-4) is None  # nothing left but the value itself
    units = SearchParam(type="categorical", choices=[32, 64, 128])
    assert _bound(units, "at_most", 64).choices == [32, 64]
    assert _bound(units, "at_most", 32) is None


def _loop_with_findings(tmp_path: Path, *rounds: tuple[list[str], dict]) -> _Loop:
    """A lineage whose round i found ``rounds[i][0]`` on the recommended plan with ``[1]``."""
    import advisor

    done = []
    for i, (problems, changes) in enumerate(rounds, start=1):
        run_dir = tmp_path / f"round-{i:02d}"
        run_dir.mkdir(parents=True, exist_ok=True)
        plan = advisor.recommend(IRIS_LIKE).model_copy(update={"search": None})
        data = plan.model_dump(mode="json")
        for path, value in changes.items():
            head, _, leaf = path.rpartition(".")
            (data[head] if head else data)[leaf] = value
        write_model(run_dir / "plan.json", type(plan).model_validate(data))
        (run_dir / "history.json").write_text(json.dumps({"epochs": list(range(1, 11))}))
        done.append(
            LineageRound(
                round=i,
                kind="recommended" if i == 1 else "revision",
                parent=None if i == 1 else i - 1,
                run_dir=str(run_dir),
                cause="recommended",
                problems=problems,
                score=0.8,
                seconds=1.0,
                runs=1,
                examples=100,
            )
        )
    lineage = Lineage(
        data="test",
        metric="val_accuracy",
        direction="maximize",
        metric_rule="select_accuracy",
        budget=AutoBudget(runs=5),
        rounds=done,
    )
    return _Loop(tmp_path, lineage, Profile.model_validate(IRIS_LIKE), None, False, print)


def test_the_search_space_is_pruned_by_earlier_findings(tmp_path):
    import advisor

    plan = advisor.recommend(IRIS_LIKE)
    free, none_pruned = _loop_with_findings(tmp_path, (["healthy"], {})).pruned_space(plan)
    assert none_pruned == []
    rate = free["optimizer.learning_rate"]
    assert rate.low < plan.optimizer.learning_rate < rate.high

    found = _loop_with_findings(tmp_path, (["lr_too_high", "overfitting"], {}))
    space, pruned = found.pruned_space(plan)
    assert space["optimizer.learning_rate"].high == plan.optimizer.learning_rate
    assert space["optimizer.learning_rate"].low == rate.low
    if "model.dropout" in space:
        assert space["model.dropout"].low == plan.model.dropout
    by_field = {p.field: p for p in pruned}
    assert by_field["optimizer.learning_rate"].rule == "prune_lr_after_lr_too_high"
    assert by_field["optimizer.learning_rate"].problem == "lr_too_high"
    assert by_field["optimizer.learning_rate"].reason
    assert by_field["optimizer.learning_rate"].found_in == 1


def test_findings_bound_the_space_at_the_plan_that_showed_them(tmp_path):
    """Underfitting at 32 units and overfitting at 128 leave 32..128 open, not the best's 128
    pinned from both sides; the bound's value is the finding round's, the best's stays inside."""
    loop = _loop_with_findings(
        tmp_path,
        (["underfitting"], {"model.units": 32, "model.dropout": 0.3}),
        (["overfitting"], {"model.units": 128, "model.dropout": 0.1}),
    )
    best = loop.plan_of(loop.lineage.rounds[1])
    space, pruned = loop.pruned_space(best)
    assert space["model.units"].choices == [32, 64, 128]
    # dropout: at most 0.3 after underfitting there, at least 0.1 after overfitting here
    assert (space["model.dropout"].low, space["model.dropout"].high) == (0.1, 0.3)
    rounds = {(p.field, p.problem): p.found_in for p in pruned}
    assert rounds[("model.units", "underfitting")] == 1
    assert rounds[("model.units", "overfitting")] == 2


def test_a_finding_whose_revision_scored_worse_narrows_nothing(tmp_path):
    """Round 2 applied the lr_too_high fixes of round 1 and scored worse: the finding is not
    supported, so larger rates stay open; had round 2 won, they would be cut."""
    loop = _loop_with_findings(tmp_path, (["lr_too_high"], {}), (["healthy"], {}))
    plan = loop.plan_of(loop.lineage.rounds[0])

    def with_revision_score(score):
        first, second = loop.lineage.rounds
        second = second.model_copy(update={"cause": "lr_too_high", "score": score})
        loop.lineage = loop.lineage.model_copy(update={"rounds": [first, second]})
        return loop.pruned_space(plan)

    worse, none = with_revision_score(0.7)
    assert none == [] and worse["optimizer.learning_rate"].high > plan.optimizer.learning_rate
    better, cut = with_revision_score(0.9)
    assert better["optimizer.learning_rate"].high == plan.optimizer.learning_rate
    assert [p.rule for p in cut] == ["prune_lr_after_lr_too_high"]
    # found again in a revision that lost: that finding narrows nothing either
    with_revision_score(0.7)
    first, second = loop.lineage.rounds
    again = second.model_copy(update={"problems": ["lr_too_high"]})
    loop.lineage = loop.lineage.model_copy(update={"rounds": [first, again]})
    assert loop.pruned_space(plan)[1] == []
    assert loop.set_aside() == [
        "lr_too_high in round 1: its revision, round 2, lost (findings_refuted_by_their_revision)",
        "lr_too_high in round 2: found again in that revision, which lost "
        "(findings_refuted_by_their_revision)",
    ]


def test_steps_move_one_dimension_on_its_scale_inside_the_space():
    policy = {s.field: s for s in load_policy().step}
    rate = SearchParam(type="float", low=1e-4, high=1e-2, log=True)
    lr = policy["optimizer.learning_rate"]
    assert _stepped(rate, 1e-3, lr, "up") == pytest.approx(1e-3 * lr.amount)
    assert _stepped(rate, 1e-3, lr, "down") == pytest.approx(1e-3 / lr.amount, rel=1e-3)
    assert _stepped(rate, 1e-2, lr, "up") is None  # already at the top of the space
    assert _stepped(rate, 5e-3, lr, "up") == 1e-2  # clipped to the space
    decay = SearchParam(type="float", low=1e-5, high=1e-1, log=True)
    wd = policy["optimizer.weight_decay"]
    assert _stepped(decay, 0.0, wd, "up") == 1e-5 and _stepped(decay, 0.0, wd, "down") is None
    units = SearchParam(type="categorical", choices=[32, 64, 128])
    width = policy["model.units"]
    assert (_stepped(units, 64, width, "up"), _stepped(units, 64, width, "down")) == (128, 32)
    assert _stepped(units, 128, width, "up") is None


def test_a_step_round_goes_the_way_the_findings_allow(tmp_path):
    import advisor

    healthy = _loop_with_findings(tmp_path / "a", (["healthy"], {}))
    step = healthy.step_step(
        healthy.lineage.rounds[0], healthy.plan_of(healthy.lineage.rounds[0]), _healthy()
    )
    kind, parent, plan, cause, _, _, why, set_aside = step
    first = load_policy().step[0]
    assert (kind, parent, cause) == ("step", 1, first.id) and first.reason in why
    assert set_aside == []  # no revision lost
    rate = advisor.recommend(IRIS_LIKE).optimizer.learning_rate
    up = plan.optimizer.learning_rate
    assert up > rate if first.first == "up" else up < rate

    high = _loop_with_findings(tmp_path / "b", (["lr_too_high"], {}))
    step = high.step_step(high.lineage.rounds[0], high.plan_of(high.lineage.rounds[0]), _healthy())
    assert step[2].optimizer.learning_rate < rate  # no larger rate after lr_too_high
    assert [p.rule for p in step[5]] == ["prune_lr_after_lr_too_high"]


def _healthy():
    """What step_step reads of the best round's diagnosis: its problems (none)."""
    from types import SimpleNamespace

    return SimpleNamespace(problems=[])


def test_plan_diff_names_the_training_fields_that_changed():
    before = example_plan("digits_mlp", {"search": None})
    after = example_plan(
        "digits_mlp", {"search": None, "optimizer.learning_rate": 0.0123, "epochs": 99}
    )
    changes = {c.field: (c.old, c.new) for c in plan_diff(before, after)}
    assert changes == {
        "optimizer.learning_rate": (before.optimizer.learning_rate, 0.0123),
        "epochs": (before.epochs, 99),
    }


def _cli(*args: str):
    """``advisor auto ARGS`` in this process (the bad-input checks need no process of their own)."""
    from click.testing import CliRunner

    from advisor.cli.commands import cli

    return CliRunner().invoke(cli, ["auto", *args], prog_name="advisor")


def test_cli_refuses_bad_input_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad_budget = _cli("builtin:iris", "--budget", "20", "--out", "a")
    assert bad_budget.exit_code == 2
    assert bad_budget.stderr.count("\n") == 1 and "--budget" in bad_budget.stderr

    nothing = _cli("builtin:iris", "--resume", "--runs", "2", "--out", "a")
    assert nothing.exit_code == 2 and "--resume" in nothing.stderr
    assert nothing.stderr.count("\n") == 1

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "lineage.json").write_text("{}")
    taken = _cli("builtin:iris", "--runs", "2", "--out", "b")
    assert taken.exit_code == 2 and "--resume" in taken.stderr
    assert not (tmp_path / "b" / "round-01").exists()


@pytest.mark.slow
def test_auto_revises_a_plan_by_its_diagnosis_and_keeps_the_best_by_validation(tmp_path):
    pytest.importorskip("jax")
    import advisor
    from advisor.contract.loading import load_plan

    start = example_plan(
        "digits_mlp",
        {
            "search": None,
            "data.source.subsample": 400,
            "n_train": 400,
            "optimizer.learning_rate": 0.05,
            "epochs": 15,
        },
    )
    data = BuiltinData(name="digits", subsample=400)
    lines: list[str] = []
    out = tmp_path / "auto"
    first = advisor.auto(data, start=start, runs=1, out_dir=out, report=lines.append)
    assert [r.kind for r in first.rounds] == ["start"] and first.stopped.startswith("budget")
    # a larger budget continues the lineage from its last finished round
    lineage = advisor.auto(data, runs=2, out_dir=out, resume=True, report=lines.append)

    assert [r.round for r in lineage.rounds] == [1, 2]
    assert sum(line.startswith("round ") for line in lines) == 2  # one line per round
    revision = lineage.rounds[1]
    assert revision.kind == "revision" and revision.parent == 1
    assert revision.cause == "lr_too_high"
    named = {p.name: p for p in revision.because}
    assert "lr_too_high" in named and named["lr_too_high"].evidence  # with its numbers
    assert any(isinstance(v, float) for v in named["lr_too_high"].evidence.values())
    changed = {c.field: c for c in revision.changes}
    assert changed["optimizer.learning_rate"].new < changed["optimizer.learning_rate"].old
    assert lineage.rounds[0].problems and "lr_too_high" in lineage.rounds[0].problems

    # the best round is the best by validation score; the test split is scored only for it
    scores = {r.round: r.score for r in lineage.rounds}
    assert lineage.best_round == max(scores, key=lambda k: (scores[k], -k))
    for r in lineage.rounds:
        run = json.loads((Path(r.run_dir) / "run.json").read_text())
        assert run["test_metrics"] == {}, "no round may look at the test split"
        assert r.examples > 0 and r.runs == 1
    assert set(lineage.test_metrics) >= {"accuracy", "loss"}
    final = load_plan(lineage.final_plan)  # the final plan validates
    copied = load_plan(out / "final_plan.json")
    assert final.optimizer.learning_rate == copied.optimizer.learning_rate
    assert final.data.test_fraction > 0

    on_disk = Lineage.model_validate_json((out / "lineage.json").read_text())
    assert on_disk == lineage
    text = (out / "lineage.md").read_text()
    assert "lr_too_high" in text and "optimizer.learning_rate" in text
    assert (out / "lineage.png").stat().st_size > 0


def _loop_with_scores(tmp_path: Path, scores: list[float]) -> _Loop:
    rounds, best = [], None
    for i, score in enumerate(scores, start=1):
        improved = best is None or score > best
        rounds.append(
            LineageRound(
                round=i,
                kind="recommended" if i == 1 else "search",
                parent=None if i == 1 else 1,
                run_dir=str(tmp_path),
                cause="search",
                score=score,
                improved=improved,
                seconds=1.0,
                runs=1,
                examples=100,
            )
        )
        best = score if improved else best
    lineage = Lineage(
        data="test",
        metric="val_accuracy",
        direction="maximize",
        metric_rule="select_accuracy",
        budget=AutoBudget(runs=100),
        rounds=rounds,
    )
    return _Loop(tmp_path, lineage, Profile.model_validate(IRIS_LIKE), None, False, print)


def test_the_loop_stops_after_rounds_without_a_new_best(tmp_path):
    patience = load_policy().stopping.patience_rounds
    still = _loop_with_scores(tmp_path, [0.80, 0.85] + [0.84] * (patience - 1))
    assert still.stop_reason() is None
    stopped = _loop_with_scores(tmp_path, [0.80, 0.85] + [0.84] * patience)
    assert stopped.stop_reason().startswith(f"no new best for {patience} rounds")


def test_the_loop_stops_on_a_perfect_score(tmp_path):
    assert _loop_with_scores(tmp_path, [1.0]).stop_reason().startswith("perfect: round 1")
    assert _loop_with_scores(tmp_path, [0.99]).stop_reason() is None


def test_the_loop_stops_on_a_plateau_of_tiny_gains(tmp_path):
    stop = load_policy().stopping
    step = 0.9 * stop.plateau_relative / (stop.plateau_rounds + 1)
    scores = [0.80, 0.90] + [0.90 + step * (i + 1) for i in range(stop.plateau_rounds)]
    assert _loop_with_scores(tmp_path, scores).stop_reason().startswith("plateau")
    climbing = [0.80, 0.90] + [0.90 + 0.01 * (i + 1) for i in range(stop.plateau_rounds)]
    assert _loop_with_scores(tmp_path, climbing).stop_reason() is None


@pytest.mark.slow
def test_a_class_weighted_plan_with_a_test_split_is_scored_on_it(tmp_path):
    pytest.importorskip("jax")
    import advisor

    plan = example_plan(
        "digits_mlp",
        {
            "search": None,
            "data.source.subsample": 200,
            "n_train": 200,
            "data.test_fraction": 0.2,
            "loss.class_weights": "balanced",
            "epochs": 3,
        },
    )
    result = advisor.run(plan, out_dir=tmp_path / "run")
    assert {"accuracy", "loss"} <= set(result.test_metrics)
    from engine.run import score_test_split

    assert score_test_split(tmp_path / "run") == pytest.approx(result.test_metrics, rel=1e-4)


@pytest.mark.slow
def test_a_search_round_runs_the_engine_search_and_keeps_its_best_values(tmp_path):
    pytest.importorskip("jax")
    searched = example_plan(
        "digits_mlp",
        {
            "data.source.subsample": 200,
            "n_train": 200,
            "epochs": 2,
            "search": {
                "method": "random",
                "space": {"optimizer.learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2}},
                "n_trials": 2,
                "epochs_per_trial": 2,
                "metric": "val_accuracy",
                "direction": "maximize",
                "pruner": "none",
            },
        },
    )
    loop = _loop_with_scores(tmp_path, [0.5])
    done = loop.run_round("search", None, searched, "search", [])
    assert done.kind == "search" and done.runs == 3  # two trials and a run of the winner
    assert done.examples == 3 * 2 * 200  # each two epochs on 200 rows
    round_dir = Path(done.run_dir)
    assert (round_dir / "run.json").exists() and Path(done.search).exists()
    trials = [
        json.loads(p.read_text())["optimizer"]["learning_rate"]
        for p in sorted((round_dir / "search" / "trials").glob("*/plan.json"))
    ]
    ran = json.loads((round_dir / "plan.json").read_text())
    assert ran["optimizer"]["learning_rate"] in trials and ran["search"] is None
