"""Progress bars as a callback: the engine reports, whoever called it draws (the CLI with rich).

A bar factory is ``factory(label, total, completed) -> bar`` with ``bar.update(completed,
description)`` and ``bar.close()``.  Without one the engine draws a plain text line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol


class Bar(Protocol):
    """One progress bar: moved to ``completed`` with a short description, then closed."""

    def update(self, completed: int, description: str) -> None: ...

    def close(self) -> None: ...


BarFactory = Callable[[str, int, int], Bar]


class TextBar:
    """A one-line text bar on stderr (``epoch 3/10  loss 0.41``), redrawn in place."""

    def __init__(self, label: str, total: int, completed: int = 0):
        self.label, self.total = label, total
        self.update(completed, "")

    def update(self, completed: int, description: str) -> None:
        line = f"{self.label} {completed}/{self.total}  {description}".rstrip()
        sys.stderr.write("\r" + line)
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def bar_factory(progress: bool | None | BarFactory) -> BarFactory | None:
    """The factory to draw with: a given one, the text bar (True, or None on a terminal), or none."""
    if callable(progress):
        return progress
    show = sys.stdout.isatty() if progress is None else bool(progress)
    return TextBar if show else None
