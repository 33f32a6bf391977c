"""The one Registry: models, losses, optimizers, schedules and augmentations by name.

A plan names what it wants; ``LOSSES.get("focal")`` finds it.  A new entry is
one function and one decorator.  A miss raises ``UnknownNameError`` with the
closest names, never a bare KeyError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from advisor.contract.errors import UnknownNameError

T = TypeVar("T", bound=Callable)


class Registry(Generic[T]):
    """A name -> factory table for one kind of thing (e.g. 'loss')."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@LOSSES.register("mse")``."""

        def add(fn: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = fn
            return fn

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
