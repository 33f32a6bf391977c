"""Reading and writing the project's files, with errors a person can act on.

``load_model`` turns a path, a dict or a model into a validated pydantic model
and translates every failure (missing file, bad JSON, wrong type, unknown
field, impossible value) into one ``InputError`` line:
``profile.json: pretrained.similarity: 1.5 is above 1; expected a number in [0, 1]``.
``write_atomic`` writes through a temporary file so a failed command leaves
nothing half-written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from advisor.contract import versions
from advisor.contract.errors import InputError, suggest
from advisor.contract.inputs import read_json as read_checked_json

M = TypeVar("M", bound=BaseModel)


def read_json(path: str | Path) -> Any:
    """Parse a JSON file, or raise InputError naming the file and the position.

    Reads through ``advisor.contract.inputs``: a regular file of bounded size, UTF-8,
    bounded nesting and integer length.
    """
    return read_checked_json(path)


def load_model(cls: type[M], source: M | dict | str | Path, *, what: str | None = None) -> M:
    """Validate ``source`` (a model, a dict, or a JSON file path) as ``cls``.

    Args:
        cls: the pydantic model to build.
        source: an instance (returned as is), a dict, or a path to a JSON file.
        what: the name to put in front of errors for dicts (default: the model name).

    Raises:
        InputError: one line naming the file (or ``what``), the field and the fix.
    """
    if isinstance(source, cls):
        return source
    if isinstance(source, (str, Path)):
        label = str(source)
        data = read_json(source)
    elif isinstance(source, dict):
        label = what or cls.__name__.lower()
        data = source
    else:
        raise InputError(
            f"{what or cls.__name__.lower()}: got a {type(source).__name__}; "
            f"expected a {cls.__name__}, a dict or a path to a JSON file"
        )
    if not isinstance(data, dict):
        raise InputError(
            f"{label}: the top level is a {type(data).__name__}; expected a JSON object"
        )
    if hasattr(cls, "format_kind"):  # a versioned file: one written before versions is version 1
        data = versions.as_file(data)
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise InputError(f"{label}: {describe_validation_error(err, cls)}") from None


def describe_validation_error(err: ValidationError, cls: type[BaseModel] | None = None) -> str:
    """The first error of a ValidationError as 'field: what was wrong; expected what'."""
    errors = err.errors(include_url=False)
    # One group per field the user wrote: a union reports one error per branch.
    groups: dict[str, list[dict]] = {}
    for error in errors:
        groups.setdefault(_loc_text(tuple(error["loc"])), []).append(error)
    # A misspelled field also explains the 'required field is missing' next to it.
    branches = min(
        groups.values(), key=lambda errs: not any(e["type"] == "extra_forbidden" for e in errs)
    )
    text = _describe_one(_pick_branch(branches), cls)
    kinds = {e["type"] for e in branches}
    if (
        "literal_error" in kinds
        and kinds & _NUMBER_PARSING
        and isinstance(branches[0].get("input"), str)
    ):
        text += "; or a number"
    if len(groups) > 1:
        text += f" (and {len(groups) - 1} more)"
    return text


_RANGE = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_NUMBER_PARSING = {"float_parsing", "float_type", "int_parsing", "int_type"}


def _pick_branch(errors: list[dict]) -> dict:
    """The error of the union branch the input was meant for: numbers -> ranges, text -> names."""
    given = errors[0].get("input")
    if isinstance(given, (int, float)) and not isinstance(given, bool):
        preferred = _RANGE
    elif isinstance(given, str):
        preferred = {"literal_error", "enum"}
    else:
        preferred = set()
    for error in errors:
        if error["type"] in preferred:
            return error
    return min(errors, key=lambda e: (e["type"] == "union_tag_invalid", -len(e["loc"])))


# Location parts pydantic adds for union members and validators, not the user's field names.
_PYDANTIC_TAGS = ("function-", "constrained-", "lax-or-strict", "json-or-python", "chain[")
_TYPE_TAGS = {"int", "float", "str", "bool", "bytes", "list", "dict", "tuple", "set", "none"}


def _loc_text(loc: tuple) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif isinstance(item, str) and item in {"builtin", "npz", "csv", "image_folder"}:
            continue  # discriminated-union branch tags are not part of the user's path
        elif isinstance(item, str) and (
            "[" in item or item.startswith(_PYDANTIC_TAGS) or item in _TYPE_TAGS
        ):
            continue  # pydantic's names for union members and validators
        else:
            parts.append(("." if parts else "") + _short(item, 60).strip("'"))
    return "".join(parts) or "(top level)"


def _describe_one(error: dict, cls: type[BaseModel] | None) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    given = error.get("input")
    path = _loc_text(loc)
    if kind == "value_error":
        # Our own model validators write "field: message"; keep their field name.
        message = str(ctx.get("error", error["msg"]))
        if path == "(top level)":
            return message
        return f"{path}.{message}" if ":" in message.split(" ")[0] else f"{path}: {message}"
    if kind == "extra_forbidden":
        known = _known_fields(cls, loc[:-1])
        hint = f"; {suggest(str(loc[-1]), known)}" if known else ""
        return f"{path}: unknown field{hint}"
    if kind == "missing":
        return f"{path}: required field is missing"
    if kind in ("literal_error", "enum"):
        expected = ctx.get("expected", "")
        names = [part.strip().strip("'") for part in expected.replace(" or ", ", ").split(",")]
        return f"{path}: {_short(given)} is not allowed; {suggest(str(given), [n for n in names if n])}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{path}: {_short(given)} is out of range; expected a value {error['msg'].lower().removeprefix('input should be ')}"
    if kind == "union_tag_invalid":
        tag = ctx.get("tag")
        expected = ctx.get("expected_tags", "")
        return f"{path}: kind {_short(tag)} is unknown; {suggest(str(tag), [t.strip().strip(chr(39)) for t in expected.split(',')])}"
    if kind == "too_short":
        return f"{path}: is empty; expected at least {ctx.get('min_length', 1)} item(s)"
    msg = error["msg"]
    msg = msg[0].lower() + msg[1:] if msg else msg
    return (
        f"{path}: {msg}; got {_short(given)}"
        if given is not None and not isinstance(given, dict)
        else f"{path}: {msg}"
    )


def _short(value: Any, limit: int = 60) -> str:
    """The repr of a user's value, cut to ``limit`` characters so one line stays one line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _known_fields(cls: type[BaseModel] | None, loc: tuple) -> list[str]:
    """Field names of the (possibly nested) model at ``loc``, for 'did you mean'."""
    if cls is None:
        return []
    model: Any = cls
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _model_of(field.annotation)
    return list(getattr(model, "model_fields", {}))


def _model_of(annotation: Any) -> Any:
    from typing import get_args

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as err:
        reason = (err.strerror or type(err).__name__).lower()
        raise InputError(f"{path}: cannot be written ({reason})") from None
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_model(path: str | Path, model: BaseModel) -> None:
    """Write a pydantic model as indented JSON, atomically."""
    write_atomic(path, model.model_dump_json(indent=2, exclude_none=False) + "\n")
