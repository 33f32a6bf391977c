"""Worker processes sharing one study: every trial runs exactly once, none is lost.

``advisor search --workers 2`` starts two worker processes on this machine
(``advisor.searching.worker_main``) that share the study through its journal
file (Optuna's JournalStorage), then writes the report from the finished study.
"""

from __future__ import annotations

import csv

import optuna
import pytest
from click.testing import CliRunner

from advisor.cli import cli
from advisor.io import write_model
from engine.search import RUN, SURPLUS, open_storage
from tests.engine_plans import make_plan

N_TRIALS = 6


@pytest.mark.slow
def test_two_workers_share_one_study_without_losing_or_repeating_a_trial(tmp_path):
    space = {"optimizer.learning_rate": {"type": "float", "low": 1e-3, "high": 0.3, "log": True}}
    plan = tmp_path / "plan.json"
    write_model(
        plan,
        make_plan(
            **{"epochs": 2, "search": {"method": "random", "space": space, "n_trials": N_TRIALS}}
        ),
    )
    out = tmp_path / "s"
    result = CliRunner().invoke(
        cli, ["search", str(plan), "--out", str(out), "--workers", "2", "--batch", "1"]
    )
    assert result.exit_code == 0, result.output

    study = optuna.load_study(study_name="iris-test", storage=open_storage(None, out))
    counted = [t for t in study.get_trials() if not t.user_attrs.get(SURPLUS)]
    assert sorted(t.number for t in counted) == list(range(N_TRIALS)), (
        "each budgeted trial number once"
    )
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in counted)
    surplus = [t for t in study.get_trials() if t.user_attrs.get(SURPLUS)]
    assert all(t.number >= N_TRIALS and RUN not in t.user_attrs for t in surplus), (
        "a surplus ask trains nothing"
    )
    assert len({t.user_attrs[RUN]["worker"] for t in counted}) == 2, "both workers trained trials"
    assert sorted(p.name for p in (out / "trials").iterdir()) == [
        f"{n:04d}" for n in range(N_TRIALS)
    ]
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert sorted(int(r["trial"]) for r in rows) == list(range(N_TRIALS))
    assert (out / "best_plan.json").exists()
