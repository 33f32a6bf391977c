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
