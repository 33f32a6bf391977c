"""Worker processes sharing one study: every trial runs exactly once, none is lost.

``advisor search --workers 2`` starts two ``advisor search`` processes on this
machine that share the study through its journal file (Optuna's
JournalStorage), then writes the report from the finished study.  Workers
survive one another: a killed worker's trials lose their heartbeat, are failed
and retried with the same values, and never count as done.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from advisor.cli.commands import cli
from advisor.contract.io import write_model
from engine.searching import workers
from engine.searching.search import (
    RUN,
    SURPLUS,
    counted_trials,
    default_batch,
    open_storage,
    open_study,
)
from tests.engine_plans import make_plan

N_TRIALS = 6
SPACE = {"optimizer.learning_rate": {"type": "float", "low": 1e-3, "high": 0.3, "log": True}}
DISTRIBUTIONS = {
    "optimizer.learning_rate": optuna.distributions.FloatDistribution(1e-3, 0.3, log=True)
}
ROOT = Path(__file__).resolve().parent.parent


def _plan(n_trials: int = 4, epochs: int = 2, method: str = "random"):
    search = {"method": method, "space": SPACE, "n_trials": n_trials}
    return make_plan(**{"epochs": epochs, "search": search})


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


# ----------------------------------------------------------------------------- batch and seeds


@pytest.mark.parametrize(
    ("n_trials", "method", "expected"),
    [(1, "random", 1), (4, "random", 2), (6, "tpe", 2), (20, "random", 5), (400, "grid", 64)],
)
def test_the_default_batch_leaves_trials_for_other_workers(n_trials, method, expected):
    space = SPACE if method != "grid" else {"model.units": {"type": "int", "low": 4, "high": 300}}
    plan = make_plan(**{"search": {"method": method, "space": space, "n_trials": n_trials}})
    assert default_batch(plan) == expected
    assert n_trials == 1 or default_batch(plan) < n_trials


def test_each_worker_seeds_its_sampler_from_the_plan_seed_and_its_name():
    assert workers.worker_seed(7, None) == 7
    seeds = {
        workers.worker_seed(7, name) for name in ("worker 1", "worker 2", "host:12", "host:13")
    }
    assert len(seeds) == 4 and all(0 <= s < 2**31 for s in seeds)
    assert workers.worker_seed(7, "worker 1") == workers.worker_seed(7, "worker 1")
    assert workers.worker_seed(8, "worker 1") != workers.worker_seed(7, "worker 1")


def _first_value(study) -> float:
    trial = study.ask(DISTRIBUTIONS)
    return trial.params["optimizer.learning_rate"]


def test_the_creator_samples_from_the_plan_seed_and_a_joiner_apart(tmp_path):
    plan = _plan()
    first = _first_value(open_study(plan, open_storage(None, tmp_path / "a"), "s"))
    again = _first_value(open_study(plan, open_storage(None, tmp_path / "b"), "s"))
    assert first == again, "a lone search is reproducible"
    joiner = open_study(plan, open_storage(None, tmp_path / "a"), "s")  # started by hand
    named = open_study(plan, open_storage(None, tmp_path / "a"), "s", "worker 1")
    values = {first, _first_value(joiner), _first_value(named)}
    assert len(values) == 3, "workers joining the study sample other values"


# ----------------------------------------------------------------------------- heartbeats


def test_a_journal_trial_without_heartbeat_is_failed_and_retried_with_its_values(tmp_path):
    study = open_study(_plan(), open_storage(None, tmp_path), "s")
    trial = study.ask(DISTRIBUTIONS)
    beat = workers.Heartbeat(study._storage, timeout=100.0)  # beats once now, then in 25 s
    beat.watch([trial])
    beat.forget([trial])
    beat.close()
    assert workers.fail_stale(study, timeout=60.0) == [], "a fresh beat is not stale"
    time.sleep(1.2)
    assert workers.fail_stale(study, timeout=1.0) == [0]
    assert workers.fail_stale(study, timeout=1.0) == [], "failed once"
    old, retry = study.get_trials()
    assert old.state == TrialState.FAIL and retry.state == TrialState.WAITING
    assert retry.params == old.params and retry.system_attrs["failed_trial"] == 0
    assert counted_trials(study.get_trials()) == 1, "the failed trial does not use the budget"
    again = study.ask(DISTRIBUTIONS)
    assert again.number == 1 and again.params == old.params
    assert workers.fail_stale(study, timeout=1.0) == [], "the retry's inherited beat is not its own"


def test_a_journal_trial_that_keeps_beating_is_never_failed(tmp_path):
    study = open_study(_plan(), open_storage(None, tmp_path), "s")
    trial = study.ask(DISTRIBUTIONS)
    beat = workers.Heartbeat(study._storage, timeout=2.0)  # a beat every second
    beat.watch([trial])
    try:
        time.sleep(3.5)
        assert workers.fail_stale(study, timeout=2.0) == []
    finally:
        beat.close()
    time.sleep(2.5)
    assert workers.fail_stale(study, timeout=2.0) == [0]


def test_a_database_trial_uses_optunas_heartbeat(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", tmp_path, heartbeat_timeout=2.0)
    assert storage.heartbeat_interval == 1 and storage.grace_period == 2
    study = open_study(_plan(), storage, "s")
    trial = study.ask(DISTRIBUTIONS)
    beat = workers.Heartbeat(storage, timeout=2.0)
    beat.watch([trial])
    beat.close()
    time.sleep(3.5)
    assert workers.fail_stale(study, timeout=2.0) == [0]
    old, retry = study.get_trials()
    assert old.state == TrialState.FAIL and retry.state == TrialState.WAITING
    assert retry.params == old.params


# ----------------------------------------------------------------------------- killed workers

TIMEOUT = 6  # seconds without a heartbeat before a killed worker's trials are retried


def _worker(plan: Path, out: Path, storage: str | None = None) -> subprocess.Popen:
    """``advisor search`` started by hand, as on another terminal or machine."""
    command = [sys.executable, "-m", "advisor.cli.commands", "search", str(plan), "--out", str(out)]
    command += ["--quiet", "--heartbeat-timeout", str(TIMEOUT)]
    command += ["--storage", storage] if storage else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)


def _study(out: Path, storage: str | None = None):
    return optuna.load_study(study_name="iris-test", storage=open_storage(storage, out))


def _wait_running(worker: subprocess.Popen, out: Path, storage: str | None = None) -> list[int]:
    """The numbers of the trials running once ``worker`` (the only one) runs some."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert worker.poll() is None, worker.communicate()[1]
        if storage or (out / "study.journal").exists():
            try:
                running = _study(out, storage).get_trials(states=(TrialState.RUNNING,))
            except KeyError:  # the study is not created yet
                running = []
            if running and all(t.params for t in running):  # asked: sampled, now training
                return [t.number for t in running]
        time.sleep(0.1)
    raise AssertionError("the worker never started a trial")


def _kill_when_running(
    worker: subprocess.Popen, out: Path, storage: str | None = None
) -> list[int]:
    """SIGKILL ``worker`` (the only one with trials) mid-trial; returns the trials it ran."""
    running = _wait_running(worker, out, storage)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    return running


def _assert_all_done_once(
    out: Path, n_trials: int, killed: list[int], err: str, storage: str | None = None
) -> None:
    trials = _study(out, storage).get_trials()
    table = "; ".join(
        f"{t.number} {t.state.name} retries {t.system_attrs.get('retry_history')}" for t in trials
    )
    why = f"trials: {table}; worker said: {err.strip()[-800:]}"
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)], why
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == n_trials, f"every budgeted trial finished, none killed counted; {why}"
    failed = [t for t in trials if t.state == TrialState.FAIL and not t.user_attrs.get(SURPLUS)]
    assert killed and {t.number for t in failed} >= set(killed), f"killed {killed}; {why}"
    for t in failed:  # retried (maybe more than once) with the same values, and finished
        retries = [d for d in done if t.number in d.system_attrs.get("retry_history", [])]
        assert retries and retries[0].params == t.params, f"trial {t.number}; {why}"
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert sum(r["state"] not in ("fail", "running", "waiting") for r in rows) == n_trials, rows
    assert (out / "best_plan.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_worker_killed_mid_trial_is_survived_by_the_other(tmp_path, kind):
    plan = tmp_path / "plan.json"
    write_model(plan, _plan(n_trials=4, epochs=20))
    out = tmp_path / "s"
    storage = f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else None
    if storage:
        open_storage(storage, out)  # the tables exist before two workers race to make them
    first = _worker(plan, out, storage)
    second = None
    try:
        _wait_running(first, out, storage)
        second = _worker(plan, out, storage)  # still importing when the first one dies mid-trial
        killed = _kill_when_running(first, out, storage)
        _, err = second.communicate(timeout=600)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
    assert second.returncode == 0, err
    assert "no heartbeat for 6 s" in err, err
    _assert_all_done_once(out, 4, killed, err, storage)
    ran = {
        t.user_attrs[RUN]["worker"]
        for t in _study(out, storage).get_trials()
        if RUN in t.user_attrs
    }
    assert {w.rsplit(":", 1)[1] for w in ran} == {str(second.pid)}, (
        f"killed one told nothing: {ran}"
    )


@pytest.mark.slow
def test_a_restarted_worker_picks_up_the_remaining_trials(tmp_path):
    plan = tmp_path / "plan.json"
    write_model(plan, _plan(n_trials=3, epochs=20))
    out = tmp_path / "s"
    first = _worker(plan, out)
    killed = _kill_when_running(first, out)
    again = _worker(plan, out)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    _assert_all_done_once(out, 3, killed, err)


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers through /proc")
def test_workers_started_together_survive_one_killed(tmp_path):
    plan = tmp_path / "plan.json"
    write_model(plan, _plan(n_trials=4, epochs=20))
    out = tmp_path / "s"
    command = [sys.executable, "-m", "advisor.cli.commands", "search", str(plan), "--out", str(out)]
    command += ["--workers", "2", "--quiet", "--heartbeat-timeout", str(TIMEOUT)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait_running(parent, out)
        victim = _children(parent.pid)[0]  # worker 1
        running = [t.number for t in _study(out).get_trials(states=(TrialState.RUNNING,))]
        os.kill(victim, signal.SIGKILL)
        _, err = parent.communicate(timeout=600)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 0, err
    assert "search worker 1 of 2 failed (killed by signal 9); the others finished its trials" in err
    trials = _study(out).get_trials()
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 4
    assert running and (out / "best_plan.json").exists()


@pytest.mark.slow
def test_ctrl_c_on_a_worker_hands_its_trials_back_at_once(tmp_path):
    plan = tmp_path / "plan.json"
    write_model(plan, _plan(n_trials=4, epochs=20))
    out = tmp_path / "s"
    command = [sys.executable, "-m", "advisor.cli.commands", "search", str(plan), "--out", str(out)]
    command += ["--quiet"]  # the default heartbeat timeout: nothing goes stale in this test
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        running = _wait_running(worker, out)
        worker.send_signal(signal.SIGINT)
        _, err = worker.communicate(timeout=300)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode != 0, err
    trials = _study(out).get_trials()
    assert not [t.number for t in trials if t.state == TrialState.RUNNING], err
    for number in running:
        assert trials[number].state == TrialState.FAIL
        retry = [t for t in trials if number in t.system_attrs.get("retry_history", [])]
        assert [t.state for t in retry] == [TrialState.WAITING]
        assert retry[0].params == trials[number].params
