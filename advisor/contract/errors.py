"""The error tree, and the exit code each kind of error maps to.

The CLI translates these in one place (``advisor.cli.commands``); the library raises them
with a message that is already the one line the user should read:
``file: field: what was wrong; expected what``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AdvisorError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = 1


class InputError(AdvisorError):
    """A user file or argument is wrong: missing, unreadable, or not valid."""

    exit_code = 2


class RuleError(AdvisorError):
    """The knowledge base itself is wrong (a rule file that does not load or lint)."""

    exit_code = 2


class UnknownNameError(InputError, KeyError):
    """A name (loss, optimizer, model, ...) that no registry holds."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        self.kind, self.name, self.known = kind, name, known
        super().__init__(f"{kind} {name!r} is unknown; {suggest(name, known)}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class EngineError(AdvisorError):
    """Training could not go on (a NaN loss, a device that is not there)."""

    exit_code = 1


def suggest(name: str, known: Iterable[str]) -> str:
    """'expected one of a, b, c; did you mean 'b'?' for a misspelled name."""
    known = sorted(known)
    text = "expected one of " + ", ".join(known)
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    if close:
        text += f"; did you mean {close[0]!r}?"
    return text
