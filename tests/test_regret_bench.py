"""benchmarks/regret.py --quick: every method runs and the report's numbers hang together."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("palmerpenguins")  # the benchmark's datasets are an optional extra

ROOT = Path(__file__).resolve().parent.parent


def _regret_module():
    spec = importlib.util.spec_from_file_location("regret", ROOT / "benchmarks" / "regret.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["regret"] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_regret_is_signed_so_that_positive_means_the_advised_run_is_worse():
    regret = _regret_module()
    assert regret.regret("accuracy", 0.8, 0.9) == pytest.approx(0.1 / 0.9)
    assert regret.regret("rmse", 0.8, 0.9) == pytest.approx(-0.1 / 0.9)


def test_the_holdout_is_fixed_in_the_script_and_known_datasets():
    regret = _regret_module()
    assert len(regret.HOLDOUT) == 3 and set(regret.HOLDOUT) <= set(regret.DATASETS)
    assert len(regret.DATASETS) >= 8


@pytest.mark.slow
def test_quick_mode_runs_every_method_on_one_dataset(tmp_path, capsys):
    regret = _regret_module()
    assert regret.main(["--quick", "--only", "penguins", "--out", str(tmp_path)]) == 0
    row = json.loads((tmp_path / "results.json").read_text())["penguins"]
    assert set(row["baselines"]) == {"defaults", "search", "hgb", "linear"}
    for name, entry in row["baselines"].items():
        low, high = entry["ci95"]
        assert low <= high, name
        expected = regret.regret(row["metric"], row["advised"]["score"], entry["score"])
        assert entry["regret"] == pytest.approx(expected)
    assert row["baselines"]["search"]["updates"] > row["advised"]["updates"]
    assert "#### Tuned datasets" in capsys.readouterr().out
