"""Plan paths such as ``optimizer.learning_rate`` or ``regularization.augmentation[0].strength``.

The one module for the dotted paths that rules, fixes and searches name: parse a
path, get or set its value in a plan dict, flatten a nested dict into paths and
nest paths back, list the paths the Plan schema declares, check a path and a
value against the schema, and suggest the closest path on a miss.  A contract
module: no jax, and the engine may import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from advisor.contract.errors import suggest
from advisor.contract.schemas import Plan

_PART = re.compile(r"^([A-Za-z_]\w*)(?:\[(\d+)\])?$")
_RAISE = object()
# Plan fields that hold the advice about the plan, not settings of it.
_NOT_SETTINGS = ("explanations", "derived_facts")


def parse(path: str) -> list[tuple[str, int | None]]:
    """``a.b[2].c`` -> ``[("a", None), ("b", 2), ("c", None)]``; KeyError names a bad part."""
    parts = []
    for raw in path.split("."):
        match = _PART.match(raw)
        if match is None:
            raise KeyError(raw)
        parts.append((match.group(1), None if match.group(2) is None else int(match.group(2))))
    return parts


def parents(path: str) -> list[str]:
    """The paths above ``path``, nearest last: ``a.b.c`` -> ``["a", "a.b"]``."""
    parts = path.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts))]


def get_path(data: Any, path: str, default: Any = _RAISE) -> Any:
    """The value at ``path`` in nested dicts (and lists, for ``[i]`` parts).

    A missing step raises KeyError or IndexError, or returns ``default`` when one is given.
    """
    node = data
    try:
        for name, index in parse(path):
            if not isinstance(node, dict) or name not in node:
                raise KeyError(name)
            node = node[name]
            if index is not None:
                if not isinstance(node, list):
                    raise KeyError(name)
                node = node[index]
    except (KeyError, IndexError):
        if default is _RAISE:
            raise
        return default
    return node


def set_path(data: dict, path: str, value: Any) -> None:
    """Set the value at ``path`` in place, making the tables on the way (list items must exist)."""
    *steps, (leaf, leaf_index) = parse(path)
    node: Any = data
    for name, index in steps:
        if index is None:
            if not isinstance(node.get(name), dict):
                node[name] = {}
            node = node[name]
        else:
            node = node[name][index]
    if leaf_index is None:
        node[leaf] = value
    else:
        node[leaf][leaf_index] = value


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` under prefix ``p`` -> ``{"p": {...}, "p.a": {...}, "p.a.b": 1}``."""
    out = {prefix: value} if prefix else {}
    if isinstance(value, dict):
        for key, sub in value.items():
            out.update(flatten(f"{prefix}.{key}" if prefix else str(key), sub))
    return out


def nest(flat: Mapping[str, Any], *, strict: bool = False) -> dict[str, Any]:
    """Dotted paths -> nested dicts; shorter paths first, so a sub-path refines its parent.

    With ``strict``, a path under a plain value (``a`` = 1 and ``a.b``) raises ValueError.
    """
    out: dict[str, Any] = {}
    for path in sorted(flat, key=lambda p: p.count(".")):
        node = out
        *above, leaf = path.split(".")
        for part in above:
            child = node.get(part)
            if not isinstance(child, dict):
                if strict and part in node:
                    raise ValueError(f"{path}: {part!r} is both a value and a table")
                child = node[part] = {}
            node = child
        value = flat[path]
        node[leaf] = dict(value) if isinstance(value, dict) else value
    return out


def leaf_paths(data: Any, prefix: str = "") -> list[str]:
    """The paths of the leaves of nested dicts, list items of tables as ``name[i]``."""
    if isinstance(data, dict):
        out = []
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else key
            out += leaf_paths(value, path) or [path]
        return out
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return [p for i, item in enumerate(data) for p in leaf_paths(item, f"{prefix}[{i}]")]
    return []


@lru_cache(maxsize=1)
def schema_paths() -> dict[str, Any]:
    """Every settable Plan path -> its type annotation (open dicts end in ``.*``).

    A field that is one of several tables (``data.source``) lists the fields of
    each; a name they type differently is typed ``Any``.
    """
    out: dict[str, Any] = {}

    def add(path: str, annotation: Any) -> None:
        out[path] = annotation if out.get(path, annotation) == annotation else Any

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            if name in _NOT_SETTINGS:
                continue
            path = f"{prefix}{name}"
            add(path, info.annotation)
            for sub in _submodels(info.annotation):
                walk(sub, path + ".")
            if get_origin(info.annotation) is dict or _is_open_dict(info.annotation):
                add(path + ".*", Any)

    walk(Plan, "")
    return out


def _submodels(annotation: Any) -> list[type[BaseModel]]:
    """The tables a field holds: its model, or the models of a union (not those of a list)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = get_origin(annotation)
    if origin is Annotated:
        return _submodels(get_args(annotation)[0])
    if origin in (list, dict):
        return []
    return [m for a in get_args(annotation) for m in _submodels(a)]


def _is_open_dict(annotation: Any) -> bool:
    return any(get_origin(a) is dict for a in get_args(annotation))


def is_plan_path(path: str) -> bool:
    """Whether the Plan schema declares ``path`` (a key of an open dict counts)."""
    paths = schema_paths()
    if path in paths:
        return True
    parts = path.split(".")
    return any(".".join(parts[:i]) + ".*" in paths for i in range(1, len(parts)))


def value_problem(path: str, value: Any) -> str | None:
    """Why ``value`` cannot be the value of ``path`` (pydantic's first message), or None."""
    annotation = schema_paths().get(path)
    if annotation is None or annotation is Any:
        return None
    try:
        TypeAdapter(annotation).validate_python(value)
    except ValidationError as err:
        return err.errors(include_url=False)[0]["msg"]
    return None


def suggest_path(path: str, known: Iterable[str] | None = None) -> str:
    """'expected one of ...; did you mean ...?' over ``known`` (default: the schema's paths)."""
    if known is None:
        known = [p for p in schema_paths() if not p.endswith("*")]
    return suggest(path, known)
