"""The ``advisor`` command: click commands and the terminal rendering."""

from advisor.cli.commands import cli, main

__all__ = ["cli", "main"]
