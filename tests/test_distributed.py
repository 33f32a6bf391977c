"""Two processes on localhost train one plan together (gloo collectives on CPU)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np

from tests.engine_plans import IRIS, make_plan


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _advisor(*args: str) -> list[str]:
    return [sys.executable, "-c", "from advisor.cli import main; main()", "run", *args]


def test_two_processes_agree_with_one(tmp_path):
    plan = make_plan(IRIS, epochs=3, batch_size=30)  # 30 rows a step: 15 on each process
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.model_dump_json())
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    single = subprocess.run(
        _advisor(str(plan_file), "--out", str(tmp_path / "single")),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    address = f"127.0.0.1:{_free_port()}"
    procs = [
        subprocess.Popen(
            _advisor(
                str(plan_file),
                "--out",
                str(tmp_path / f"p{i}"),
                "--coordinator",
                address,
                "--num-processes",
                "2",
                "--process-id",
                str(i),
            ),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]

    def read(name):
        run = tmp_path / name
        history = json.loads((run / "history.json").read_text())["series"]
        return history, json.loads((run / "plan.json").read_text())["scale"]["devices"]

    one, one_devices = read("single")
    assert one_devices == 1
    for name in ("p0", "p1"):
        both, devices = read(name)
        assert devices == 2  # the mesh spans both processes' devices
        for series in ("loss", "val_loss", "grad_norm"):
            np.testing.assert_allclose(both[series], one[series], rtol=1e-5, err_msg=series)


def test_incomplete_cluster_options_are_one_line(tmp_path):
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(make_plan(IRIS, epochs=1).model_dump_json())
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    done = subprocess.run(
        _advisor(str(plan_file), "--coordinator", "127.0.0.1:1"),
        env={**env, "PYTHONPATH": os.getcwd()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--coordinator, --num-processes and --process-id go together" in done.stderr
