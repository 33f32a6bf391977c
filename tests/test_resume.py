"""Runs that survive: a real ``kill -9`` then ``--resume`` ends where an uninterrupted run ends.

The plan checkpoints every epoch (``checkpoint.interval_seconds: 0``) and uses
early stopping with best-weight restore and reduce-on-plateau, so the
checkpoint must carry the optimizer state and its rate scale, the RNG key,
the early-stopping and plateau counters, the best weights and the history.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advisor.workflows.running import run
from engine.training.resume import latest_epoch
from tests.engine_plans import DIGITS_GAN, make_plan

ROOT = Path(__file__).resolve().parent.parent
EPOCHS = 16


def _plan_file(tmp_path: Path, interval: float = 0) -> Path:
    plan = make_plan(
        epochs=EPOCHS,
        checkpoint={"interval_seconds": interval, "keep_last": 2},
        schedule={"name": "reduce_on_plateau", "patience": 2, "factor": 0.5},
        regularization={
            "early_stopping": {"patience": 6, "restore_best": True},
            "augmentation": [],
        },
        **{"optimizer.learning_rate": 0.03},
    )
    path = tmp_path / "plan.json"
    path.write_text(plan.model_dump_json())
    return path


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "advisor.cli.commands", "run", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_checkpoint(run_dir: Path, epoch: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while (latest_epoch(run_dir) or 0) < epoch:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


def _outcome(run_dir: Path) -> tuple[bytes, dict, dict]:
    """Weights, history series and final metrics, without the timings."""
    history = json.loads((run_dir / "history.json").read_text())
    series = {k: v for k, v in history["series"].items() if k != "epoch_time"}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics.pop("epoch_time", None)
    return (
        (run_dir / "model.safetensors").read_bytes(),
        {"epochs": history["epochs"], **series},
        metrics,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same plan run once without interruption and with no checkpoints: they change nothing."""
    tmp = tmp_path_factory.mktemp("reference")
    result = run(_plan_file(tmp, interval=3600), out_dir=tmp / "run", progress=False)
    assert result.resumed_from_epoch is None
    return _outcome(tmp / "run")


def test_a_run_killed_with_sigkill_resumes_bit_identical(tmp_path, reference):
    run_dir = tmp_path / "run"
    process = _start([str(_plan_file(tmp_path)), "--out", str(run_dir)])
    _wait_for_checkpoint(run_dir, 3, process)
    process.send_signal(signal.SIGKILL)  # a real kill -9: no handler runs
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not (run_dir / "run.json").exists()
    killed_at = latest_epoch(run_dir)
    assert killed_at is not None and killed_at < EPOCHS
    result = run(resume=run_dir, progress=False)
    assert result.resumed_from_epoch is not None and result.resumed_from_epoch >= 3
    weights, history, metrics = _outcome(run_dir)
    assert weights == reference[0]
    assert history == reference[1]
    assert metrics == reference[2]
    # the live CSV holds each epoch once, as the finished history does
    rows = (run_dir / "history.csv").read_text().splitlines()
    assert len(rows) == 1 + len(history["epochs"])


def test_sigterm_ends_the_epoch_saves_and_says_how_to_resume(tmp_path, reference):
    run_dir = tmp_path / "run"
    process = _start([str(_plan_file(tmp_path)), "--out", str(run_dir)])
    _wait_for_checkpoint(run_dir, 2, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: interrupted by SIGTERM after epoch ")
    assert f"continue with: advisor run --resume {run_dir}" in last
    stopped = int(last.split("after epoch ")[1].split(":")[0])
    assert latest_epoch(run_dir) == stopped  # the epoch the signal arrived in was saved
    history = json.loads((run_dir / "history.json").read_text())
    assert history["epochs"] == list(range(1, stopped + 1))
    result = run(resume=run_dir, progress=False)
    assert result.resumed_from_epoch == stopped
    assert _outcome(run_dir) == reference


def test_resume_refuses_a_finished_run_and_a_folder_without_a_plan(tmp_path):
    from advisor.contract.errors import InputError

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"^--resume: .*empty holds no plan.json"):
        run(resume=tmp_path / "empty")
    done = tmp_path / "done"
    run(make_plan(epochs=1), out_dir=done, progress=False)
    with pytest.raises(InputError, match=r"^--resume: .*done holds a finished run \(run.json\)"):
        run(resume=done)


def _gan_plan():
    return make_plan(DIGITS_GAN, epochs=4, checkpoint={"interval_seconds": 0})


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cnn_batch_norm", "gan"])
def test_a_signal_inside_the_process_stops_saves_and_resumes_identically(tmp_path, kind):
    from advisor.contract.errors import EngineError
    from tests.engine_plans import DIGITS_CNN

    if kind == "gan":
        plan = _gan_plan()
    else:
        plan = make_plan(DIGITS_CNN, epochs=4, checkpoint={"interval_seconds": 3600})
    run(plan, out_dir=tmp_path / "reference", progress=False)

    def terminate_at_two(state, logs):
        if state.epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # handled: the run ends after this epoch

    with pytest.raises(EngineError, match=r"^interrupted by SIGTERM after epoch 2: ") as caught:
        run(plan, out_dir=tmp_path / "r", callbacks=[terminate_at_two], progress=False)
    assert caught.value.exit_code == 143
    assert latest_epoch(tmp_path / "r") == 2  # saved although the interval is an hour
    result = run(resume=tmp_path / "r", progress=False)
    assert result.resumed_from_epoch == 2
    assert _outcome(tmp_path / "r") == _outcome(tmp_path / "reference")
