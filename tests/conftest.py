"""Shared test setup: GPU tests are skipped unless a GPU is present."""

from __future__ import annotations

import os

import pytest

# Tests run on the CPU with deterministic reductions; set before jax is imported anywhere.
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("ADVISOR_GPU_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="needs a GPU (set ADVISOR_GPU_TESTS=1 on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def strict_jax():
    """Run a test under strict dtype promotion and with rank promotion raising (STYLE B7)."""
    import jax

    with jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion("strict"):
        yield


@pytest.fixture(scope="session")
def digits_base(tmp_path_factory):
    """The example base (a CNN on digits 0-4, examples/bases/digits_0to4.json), built once per session."""
    from pathlib import Path

    from advisor.running import run

    plan = Path(__file__).resolve().parent.parent / "examples" / "bases" / "digits_0to4.json"
    return Path(run(plan, out_dir=tmp_path_factory.mktemp("bases") / "digits_0to4").run_dir)
