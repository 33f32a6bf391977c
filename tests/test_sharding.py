"""Data parallelism over forced CPU devices: 1 and 8 devices train the same curve."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from tests.engine_plans import DIGITS_CNN, make_plan


def _run(plan, counts, device_count=8, command=("curves",)):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={device_count}"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.scale_support", *command, *map(str, counts)],
        input=plan.model_dump_json(),
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_eight_devices_train_the_one_device_curve():
    # a CNN with batch norm, whose statistics are over the global batch; 20 is not divisible
    # by 8.  Plain SGD: under Adam the conv biases before batch norm (gradient zero up to
    # rounding) take full-size steps of the rounding noise's sign, which differs per device
    # count, and the running means follow them.
    plan = make_plan(
        DIGITS_CNN,
        batch_size=20,
        epochs=2,
        n_train=200,
        **{"data.source.subsample": 200, "optimizer.name": "sgd", "optimizer.learning_rate": 0.1},
    )
    out = _run(plan, [1, 8])
    one, eight = out["1"], out["8"]
    assert one["devices"] == 1 and eight["devices"] == 8
    assert any("spec=P()" in s and "'data': 8" in s for s in eight["param_shardings"])
    for name in ("loss", "val_loss", "grad_norm"):
        a, b = np.array(one["series"][name]), np.array(eight["series"][name])
        assert len(a) == 2
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6, err_msg=name)
    assert one["series"]["loss"][-1] < one["series"]["loss"][0]  # it learned


def test_asking_for_more_devices_than_there_are_names_the_field():
    plan = make_plan(**{"scale.devices": 16})
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.scale_support", "curves", "16"],
        input=plan.model_dump_json(),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode != 0
    assert "devices: the plan asks for 16 cpu devices but JAX sees 8" in done.stderr


def test_eight_trials_train_one_per_device_as_on_one_device():
    plan = make_plan(epochs=2)  # the iris MLP
    out = _run(plan, [1, 8], command=("population", "8"))
    one, eight = out["1"], out["8"]
    assert all("'data': 8" in s and "spec=P('data',)" in s for s in eight["shardings"])
    assert eight["status"] == one["status"] == ["complete"] * 8
    np.testing.assert_allclose(eight["losses"], one["losses"], rtol=1e-5)
    np.testing.assert_allclose(eight["val_losses"], one["val_losses"], rtol=1e-5)
    assert len({round(losses[-1], 6) for losses in one["losses"]}) == 8  # eight different trials


def test_sequential_trials_run_one_per_device_as_on_one_device():
    plan = make_plan(epochs=2)  # the iris MLP
    out = _run(plan, [1, 4], device_count=4, command=("sequential", "4"))
    one, four = out["1"], out["4"]
    assert one["lanes"] == 1 and len(set(one["devices"])) == 1
    assert four["lanes"] == 4 and len(set(four["devices"])) == 4  # each trial its own device
    np.testing.assert_allclose(four["losses"], one["losses"], rtol=1e-6)
    np.testing.assert_allclose(four["val_losses"], one["val_losses"], rtol=1e-6)
    assert len({round(losses[-1], 6) for losses in one["losses"]}) == 4  # four different trials
