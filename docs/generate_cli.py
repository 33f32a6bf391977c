"""Write docs/cli.md from the ``--help`` of every ``advisor`` command.

    python docs/generate_cli.py           # rewrite docs/cli.md
    python docs/generate_cli.py --check   # exit 1 when docs/cli.md is out of date

The reference is generated, never edited by hand, so it cannot drift from the
code; ``tests/test_cli_core.py`` fails when someone changes a help text without
running this.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import click
from click.testing import CliRunner

DOC = Path(__file__).resolve().parent / "cli.md"
WIDTH = 100  # fixed, so the text does not depend on the terminal that generated it

HEADER = """# advisor command-line reference

Generated from `advisor --help` by `python docs/generate_cli.py`; do not edit by hand.
Exit codes: 0 success, 2 bad input (a file, a field or a rule), 1 a failure while training.
"""


def command_paths(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``command``, depth first, in name order."""
    paths = [path]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            paths += command_paths(command.commands[name], (*path, name))
    return paths


def help_text(path: tuple[str, ...]) -> str:
    """The ``--help`` output of one command, as a user would see it."""
    from advisor.cli.commands import cli

    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="advisor", terminal_width=WIDTH)
    if result.exit_code != 0:
        raise RuntimeError(f"advisor {' '.join(path)} --help failed: {result.output}")
    return result.output.rstrip() + "\n"


def render() -> str:
    """The whole reference document."""
    from advisor.cli.commands import cli

    sections = [HEADER]
    for path in command_paths(cli):
        title = " ".join(("advisor", *path))
        sections.append(f"## {title}\n\n```text\n{help_text(path)}```\n")
    return "\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/cli.md from advisor --help.")
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/cli.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            print("docs/cli.md is out of date; run python docs/generate_cli.py")
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC.relative_to(Path.cwd()) if DOC.is_relative_to(Path.cwd()) else DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
