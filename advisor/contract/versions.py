"""File format versions: the version each kind of file is at, and how older files catch up.

Every file model (``schemas.Versioned``: plans, profiles, histories, diagnoses,
run summaries ...) carries ``format_version``.  Reading one goes through
``upgrade``: a ``$schema`` key (an editor's pointer to a JSON Schema) is
dropped, an older version is brought to the current one by the registered
migrations (small functions, one per kind and step), and a newer version, or
an older one with no migration left, is refused with the version named.  A
file without ``format_version`` was written before versions existed and is
read as version ``FIRST``; a model built in code without one is current.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FIRST = 1
FIELD = "format_version"
SCHEMA_KEY = "$schema"

# kind -> the version this code reads and writes.  Bump a kind's number when its
# format changes in a way older files cannot be read as, and register the step.
CURRENT: dict[str, int] = {
    "profile": 1,
    "plan": 1,
    "history": 1,
    "diagnosis": 1,
    "run": 1,
    "preprocessing": 1,
    "evaluation": 1,
    "search": 1,
    "lr_find": 1,
    "lineage": 1,
}

Migration = Callable[[dict[str, Any]], dict[str, Any]]

# (kind, version) -> the function that turns that version's dict into the next version's.
MIGRATIONS: dict[tuple[str, int], Migration] = {}


def migration(kind: str, from_version: int) -> Callable[[Migration], Migration]:
    """Register the step that upgrades a ``kind`` file from ``from_version`` to the next one."""

    def register(step: Migration) -> Migration:
        MIGRATIONS[(kind, from_version)] = step
        return step

    return register


def as_file(data: Any) -> Any:
    """A dict read from a file: without ``format_version`` it is a version-``FIRST`` file."""
    if isinstance(data, dict) and FIELD not in data:
        return {**data, FIELD: FIRST}
    return data


def upgrade(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` at the current version of ``kind``, without a ``$schema`` key.

    Raises:
        ValueError: "format_version: ..." naming the version that cannot be read
            (newer than this code, older than every migration, or not a version at all).
    """
    current = CURRENT[kind]
    data = dict(data)
    schema = data.pop(SCHEMA_KEY, None)
    if schema is not None and not isinstance(schema, str):
        raise ValueError(
            f"{SCHEMA_KEY}: got {type(schema).__name__} {_short(schema)}; "
            "expected text: the URL or path of a JSON Schema"
        )
    version = data.get(FIELD, current)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(
            f"{FIELD}: {_short(version)} is not a version; expected a whole number "
            f"such as {current}"
        )
    if version > current:
        raise ValueError(
            f"{FIELD}: {kind} format {version} is newer than this advisor reads "
            f"({current}); upgrade advisor to read it"
        )
    if version < FIRST:
        raise ValueError(
            f"{FIELD}: {version} is out of range; versions start at {FIRST} (current: {current})"
        )
    while version < current:
        step = MIGRATIONS.get((kind, version))
        if step is None:
            raise ValueError(
                f"{FIELD}: {kind} format {version} is no longer read; expected {current} "
                "(rewrite the file with the current advisor)"
            )
        data = step(data)
        version += 1
    data[FIELD] = current
    return data


def _short(value: Any) -> str:
    """The repr of a user's value, cut so the message stays one line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
