"""The advisor stays light: no jax on import, none to recommend or explain, no rich off a terminal.

Each check runs in a fresh interpreter, because other tests in this process
import jax on purpose.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules_after(code: str) -> set[str]:
    """The top-level modules a fresh interpreter holds after running ``code``."""
    script = (
        code + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(result.stdout.split())


def test_import_advisor_loads_no_jax_and_no_pydantic():
    loaded = modules_after("import advisor")
    assert "jax" not in loaded
    assert "pydantic" not in loaded  # the public API is imported lazily


def test_recommend_and_explain_load_no_jax():
    loaded = modules_after(
        "from advisor import recommend, explain\n"
        "plan = recommend('examples/profiles/transfer_small_different.json')\n"
        "explain(plan, 'freeze.strategy')\n"
    )
    assert "advisor" in loaded
    assert not {"jax", "flax", "optax", "engine"} & loaded


def test_the_recommend_command_loads_no_jax_and_no_rich_off_a_terminal():
    loaded = modules_after(
        "import sys\n"
        "from advisor.cli.commands import cli\n"
        "try:\n"
        "    cli(['recommend', 'examples/profiles/digits_mlp.json'], prog_name='advisor')\n"
        "except SystemExit as stop:\n"
        "    assert stop.code == 0, stop.code\n"
    )
    assert not {"jax", "rich"} & loaded
