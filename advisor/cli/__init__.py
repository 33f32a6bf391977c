"""The ``advisor`` command: click commands, their bodies, and all terminal rendering.

``commands`` (click), ``bodies`` (what each command does) and ``render`` (rich and plain
output).  The names of ``commands`` (``cli``, ``main``...) resolve here lazily, so
``advisor.cli:main``, ``from advisor.cli import cli`` and ``python -m advisor.cli`` work
while ``python -m advisor.cli.commands`` finds its module unimported.
"""

from importlib import import_module
from typing import Any

_SUBMODULES = ("commands", "bodies", "render")


def __getattr__(name: str) -> Any:
    if name.startswith("__") or name in _SUBMODULES:  # submodules: the import system's job
        raise AttributeError(f"module 'advisor.cli' has no attribute {name!r}")
    return getattr(import_module("advisor.cli.commands"), name)
