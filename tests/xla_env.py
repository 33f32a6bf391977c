"""The XLA flags the test suite compiles with, shared by conftest and the subprocess tests.

XLA:CPU compiles with LLVM at -O0 in the tests: the suite's small models spend most of
their time compiling, and -O0 cuts that by about a third.  XLA's graph passes and the
engine's compiler options are unchanged; values agree with -O3 to the last bits of a
float, and the tests compare runs with each other, all compiled alike.
"""

from __future__ import annotations

import os

TEST_XLA_FLAGS = "--xla_backend_optimization_level=0"


def use_test_xla_flags() -> None:
    """Add :data:`TEST_XLA_FLAGS` to ``XLA_FLAGS`` (before JAX starts a backend)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if TEST_XLA_FLAGS not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {TEST_XLA_FLAGS}".strip()
