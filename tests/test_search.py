"""advisor search: bad input in one line, a search end to end, grid coverage, pruning, resuming.

Searches run on iris (a few epochs) so each takes seconds; the trials' own
equality with lone runs is tests/test_population.py's.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.commands import cli
from advisor.contract.io import write_model
from advisor.contract.loading import load_plan
from advisor.contract.schemas import SearchResult
from advisor.readers import load_history
from tests.engine_plans import make_plan

LR_AND_UNITS = {
    "optimizer.learning_rate": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
    "model.units": {"type": "categorical", "choices": [8, 16]},
}


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def write_plan(folder: Path, name: str = "plan.json", **changes) -> Path:
    search = {"method": "random", "space": LR_AND_UNITS, "n_trials": 4}
    search.update(changes.pop("search", {}))
    path = folder / name
    write_model(path, make_plan(**{"epochs": 3, "search": search, **changes}))
    return path


# ----------------------------------------------------------------------------- bad input

BAD_SPACES = [
    ({"space": {}}, "search.space: is empty; expected at least one plan field to search"),
    (
        {"space": {"optimizer.learnig_rate": {"type": "float", "low": 0.1, "high": 1}}},
        "search.space.optimizer.learnig_rate: the plan has no such field; expected one of",
    ),
    (
        {"space": {"model.filters": {"type": "categorical", "choices": [[8, 16]]}}},
        "search.space.model.filters: a mlp model has no filters; search a field this model uses",
    ),
    (
        {"space": {"optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.9}}},
        "search.space.optimizer.momentum: optimizer 'adam' does not read it (only sgd, rmsprop do)",
    ),
    (
        {"space": {"model.dropout": {"type": "float", "low": 0.0, "high": 1.0}}},
        "search.space.model.dropout: the value 1.0 does not give a valid plan (model.dropout:",
    ),
    (
        {"method": "grid", "space": {"model.dropout": {"type": "float", "low": 0.0, "high": 0.5}}},
        "search.space.model.dropout: grid search needs a list of values; give type 'categorical' with choices",
    ),
    (
        {"metric": "val_auc"},
        "search.metric: 'val_auc' is not recorded by this plan; expected one of",
    ),
    (
        {"space": {"optimizer": {"type": "float", "low": 0.1, "high": 1}}},
        "search.space.optimizer: is a section, not a field; name one of its fields, e.g. optimizer.name",
    ),
]


@pytest.mark.parametrize("search, message", BAD_SPACES, ids=[m[:40] for _, m in BAD_SPACES])
def test_a_bad_space_is_one_line_and_exit_2(tmp_path, search, message):
    plan = write_plan(tmp_path, search=search)
    result = run("search", str(plan), "--out", str(tmp_path / "s"))
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {plan}: {message}")
    assert result.output.count("\n") == 1
    assert not (tmp_path / "s").exists(), "nothing is written"


def test_a_plan_without_a_search_section_is_refused(tmp_path):
    path = tmp_path / "plan.json"
    write_model(path, make_plan())
    result = run("search", str(path))
    assert result.exit_code == 2
    assert "search: the plan has no search section" in result.output


def test_a_storage_that_cannot_be_opened_is_one_line_and_exit_2(tmp_path):
    plan = write_plan(tmp_path)
    result = run(
        "search",
        str(plan),
        "--out",
        str(tmp_path / "s"),
        "--storage",
        "sqlite:////no/such/folder/study.db",
    )
    assert result.exit_code == 2
    assert result.output.startswith(
        "error: --storage: cannot open 'sqlite:////no/such/folder/study.db' ("
    )
    assert result.output.count("\n") == 1


# ----------------------------------------------------------------------------- a search end to end


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    plan = write_plan(folder)
    # population mode: the timing of both modes is tests/test_population.py's, and costs two compiles
    result = run("search", str(plan), "--out", str(folder / "s"), "--mode", "population")
    assert result.exit_code == 0, result.output
    return (
        folder,
        result.output,
        SearchResult.model_validate_json((folder / "s" / "search.json").read_text()),
    )


def test_the_summary_says_why_a_faster_population_step_can_still_lose(searched):
    # a vmapped step 2.76x faster, yet sequential: compiling the vmapped program costs more
    from advisor.contract.schemas import ModeTiming
    from advisor.workflows.searching import summary

    timed = ModeTiming(
        structure="mlp units=64",
        trials=8,
        mode="sequential",
        speedup=2.76,
        expected_population_s=1.9,
        expected_sequential_s=0.62,
    )
    text = summary(searched[2].model_copy(update={"modes": [timed]}))
    assert (
        "trained: mlp units=64: 8 trials sequential (a population step timed at 2.76x the trials'"
        " steps in turn; with compiles, 1.9 s vmapped vs 0.62 s in turn)"
    ) in text.splitlines()


@pytest.mark.slow
def test_the_search_writes_leaderboard_best_plan_picture_and_histories(searched):
    folder, output, summary = searched
    out = folder / "s"
    assert summary.counts == {"complete": 4}
    assert {m.structure for m in summary.modes} <= {"mlp units=8", "mlp units=16"}
    assert sum(m.trials for m in summary.modes) == 4
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    values = [float(r["val_loss"]) for r in rows]
    assert values == sorted(values) and values[0] == pytest.approx(summary.best_value)
    assert (out / "search.png").stat().st_size > 0
    assert f"best: trial {summary.best_trial}, val_loss" in output
    assert output.splitlines()[-1].startswith("files: leaderboard.csv, search.png")
    for row in rows:  # every trial's history reads back, and ends where the leaderboard says
        history = load_history(out / "trials" / f"{int(row['trial']):04d}" / "history.json")
        assert history.series["val_loss"][-1] == pytest.approx(float(row["val_loss"]))


@pytest.mark.slow
def test_the_best_plan_is_a_plain_plan_that_says_where_its_values_came_from(searched):
    folder, _, summary = searched
    best = load_plan(summary.best_plan)
    trial = load_plan(folder / "s" / "trials" / f"{summary.best_trial:04d}" / "plan.json")
    assert best.search is None and not any(k.startswith("search") for k in best.explanations)
    assert best.optimizer.learning_rate == trial.optimizer.learning_rate
    assert best.model.units == trial.model.units
    why = best.explanations["optimizer.learning_rate"]
    assert why.rule == "search"
    assert why.reason.startswith(
        f"Trial {summary.best_trial} of the random search set it: the best val_loss ("
    )
    assert why.matched["trial"] == summary.best_trial
    result = run("explain", summary.best_plan, "model.units")
    assert result.exit_code == 0 and "rule:    search" in result.output


@pytest.mark.slow
def test_running_the_search_again_finds_the_study_complete(searched):
    folder, _, summary = searched
    again = run("search", str(folder / "plan.json"), "--out", str(folder / "s"), "--json")
    assert again.exit_code == 0
    result = SearchResult.model_validate_json(again.output)
    assert result.counts == summary.counts and result.best_trial == summary.best_trial
    assert result.modes == [], "no trial was trained again"


@pytest.mark.slow
def test_a_grid_search_runs_every_point_once(tmp_path):
    space = {
        "optimizer.learning_rate": {"type": "categorical", "choices": [0.01, 0.1]},
        "model.dropout": {"type": "categorical", "choices": [0.0, 0.2]},
    }
    plan = write_plan(tmp_path, search={"method": "grid", "space": space, "n_trials": 10}, epochs=2)
    result = run(
        "search", str(plan), "--out", str(tmp_path / "s"), "--mode", "sequential", "--json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["counts"] == {"complete": 4}
    rows = list(csv.DictReader((tmp_path / "s" / "leaderboard.csv").open()))
    points = {(float(r["optimizer.learning_rate"]), float(r["model.dropout"])) for r in rows}
    assert points == {(0.01, 0.0), (0.01, 0.2), (0.1, 0.0), (0.1, 0.2)}


@pytest.mark.slow
def test_the_median_pruner_stops_trials_and_keeps_their_histories(tmp_path):
    space = {"optimizer.learning_rate": {"type": "float", "low": 1e-6, "high": 0.3, "log": True}}
    plan = write_plan(
        tmp_path,
        search={"method": "random", "space": space, "n_trials": 9, "pruner": "median"},
        epochs=6,
    )
    result = run("search", str(plan), "--out", str(tmp_path / "s"), "--batch", "1", "--json")
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)["counts"]
    assert counts.get("pruned", 0) >= 1 and sum(counts.values()) == 9
    for row in csv.DictReader((tmp_path / "s" / "leaderboard.csv").open()):
        history = load_history(
            tmp_path / "s" / "trials" / f"{int(row['trial']):04d}" / "history.json"
        )
        if row["state"] == "pruned":
            assert row["rank"] == "" and len(history.epochs) < 6
        else:
            assert len(history.epochs) == 6


@pytest.mark.slow
def test_advisor_run_on_a_searched_plan_searches_then_trains_the_best(tmp_path):
    plan = write_plan(
        tmp_path,
        search={
            "n_trials": 1,
            "space": {"model.dropout": {"type": "categorical", "choices": [0.0, 0.3]}},
        },
        epochs=2,
    )
    result = run("run", str(plan), "--out", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    assert "searched first:" in result.output
    run_json = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run_json["search"] == str(tmp_path / "r" / "search" / "search.json")
    assert load_plan(tmp_path / "r" / "plan.json").search is None


def test_the_best_plan_ranks_the_overridden_rule_with_the_priorities_advisor_passes():
    from advisor.expert.rules import load_rules
    from advisor.workflows.searching import rule_priorities
    from engine.searching.search_report import Row, best_plan

    plan = load_plan("examples/plans/wine_random_search.json")
    rule = plan.explanations["model.units"].rule
    row = Row(1, 3, "complete", 0.9, 5, {"model.units": 32}, 1.0, "population")
    chosen = best_plan(plan, row, 4, rule_priorities())
    overridden = chosen.explanations["model.units"].overridden
    assert chosen.model.units == 32 and [o.rule for o in overridden] == [rule]
    assert overridden[0].priority == {r.id: r.priority for r in load_rules([])}[rule] != 0
    assert best_plan(plan, row, 4).explanations["model.units"].overridden[0].priority == 0


@pytest.mark.slow
def test_a_failing_worker_is_one_line_naming_it(tmp_path):
    import advisor
    from advisor.contract.errors import EngineError

    space = {"optimizer.learning_rate": {"type": "float", "low": 1e-3, "high": 0.3, "log": True}}
    missing = tmp_path / "missing.npz"
    plan = make_plan(
        epochs=1,
        search={"method": "random", "space": space, "n_trials": 2},
        data={"source": {"kind": "npz", "path": str(missing)}},
    )
    with pytest.raises(EngineError) as err:
        advisor.search(plan, tmp_path / "s", workers=2)
    assert str(err.value).startswith("search worker 1 of 2 failed: data.source.path: ")
    assert f"{missing} does not exist" in str(err.value) and "\n" not in str(err.value)
