"""Two processes on localhost train one plan together (gloo collectives on CPU)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pandas as pd

from tests.engine_plans import IRIS, make_plan


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _advisor(*args: str) -> list[str]:
    return [sys.executable, "-c", "from advisor.cli.commands import main; main()", "run", *args]


def _single_and_pair(tmp_path, plan):
    """history series and scale.devices of one process, then of each of two processes."""
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.model_dump_json())
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop("XLA_FLAGS", None)  # one CPU device per process
    single = subprocess.run(
        _advisor(str(plan_file), "--out", str(tmp_path / "single")),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
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
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-2000:]

    def read(name):
        run = tmp_path / name
        history = json.loads((run / "history.json").read_text())["series"]
        return history, json.loads((run / "plan.json").read_text())["scale"]

    return read("single"), [read("p0"), read("p1")]


def _assert_agree(one, pair):
    (series, scale), runs = one, pair
    assert scale["devices"] == 1
    for both, both_scale in runs:
        assert both_scale["devices"] == 2  # the mesh spans both processes' devices
        for name in ("loss", "val_loss", "grad_norm"):
            np.testing.assert_allclose(both[name], series[name], rtol=1e-5, err_msg=name)


def test_two_processes_agree_with_one(tmp_path):
    plan = make_plan(IRIS, epochs=3, batch_size=30)  # 30 rows a step: 15 on each process
    _assert_agree(*_single_and_pair(tmp_path, plan))


def test_two_processes_each_read_their_rows_of_a_streamed_table(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(150, 4)), columns=list("abcd"))
    frame["y"] = (frame["a"] + frame["b"] > 0).astype(int)
    frame.to_parquet(tmp_path / "t.parquet")
    plan = make_plan(
        input_shape=[4],
        n_classes=2,
        n_train=120,
        epochs=2,
        batch_size=30,  # 120 training rows: 4 batches, 15 rows from each process's reads
        **{
            "model.output_units": 2,
            "data.source": {"kind": "csv", "path": "t.parquet", "target": "y"},
            "scale": {"data_path": "stream"},
        },
    )
    one, pair = _single_and_pair(tmp_path, plan)
    assert one[1]["data_path"] == "stream" and pair[0][1]["data_path"] == "stream"
    _assert_agree(one, pair)


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
