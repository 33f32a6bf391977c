"""The ``advisor`` command: click commands (``commands``) and the terminal rendering (``render``).

``advisor.cli:main`` and ``advisor.cli:cli`` resolve lazily, so ``python -m advisor.cli.commands``
finds its module unimported.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("cli", "main"):
        from advisor.cli import commands

        return getattr(commands, name)
    raise AttributeError(f"module 'advisor.cli' has no attribute {name!r}")
