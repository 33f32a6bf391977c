"""The one door every user file comes in through, and the checks on where outputs go.

A user can hand any path to any command: a folder, a FIFO that never ends,
``/dev/zero``, a symlink loop, a 4 GiB file, a system file, JSON nested ten
thousand levels deep, an integer of a million digits.  Each of those must end
in one ``InputError`` line naming the file (and the plan field, when one
points at the file) and what was expected, never a traceback, a hang, or a
line of the file's content echoed back.

``checked_file`` looks at a path before anything opens it (regular file,
bounded size); ``read_bytes``/``read_text``/``read_json`` read through it
with bounded reads and strict decoding; ``check_output`` refuses an output
path that cannot be written (under a regular file, in a read-only folder,
equal to an input) before any work is done; ``confine`` keeps data paths
under an optional ``--data-root``.

This module imports neither jax nor numpy.
"""

from __future__ import annotations

import json
import os
import stat
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from advisor.contract.errors import InputError

# Size limits by kind of file.  A plan or profile is a few KiB; a history of a
# long run a few MiB; data files may be large but must still fit in memory.
MAX_JSON_BYTES = 64 * 2**20
MAX_TEXT_BYTES = 64 * 2**20
MAX_HISTORY_BYTES = 512 * 2**20
MAX_DATA_BYTES = 8 * 2**30
# JSON structure limits: the project's formats nest fewer than ten levels.
MAX_JSON_DEPTH = 64
MAX_INT_DIGITS = 40  # 10**40 is beyond any count, seed or size a file can mean


def _where(path: Path, field: str | None) -> str:
    return f"{field}: {path}" if field else str(path)


def checked_file(
    path: str | Path,
    *,
    field: str | None = None,
    what: str = "file",
    max_bytes: int = MAX_DATA_BYTES,
) -> Path:
    """``path`` if it names a regular file of at most ``max_bytes``; else one InputError line.

    Follows symlinks (a loop is an error), refuses folders, FIFOs, sockets and
    devices (which would block or never end), and files over the limit.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(
            f"{field or what}: got a {type(path).__name__}; expected a path to a {what}"
        )
    path = Path(path)
    where = _where(path, field)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"{where}: no such file") from None
    except OSError as err:
        raise InputError(f"{where}: cannot be opened ({_reason(err)}); expected a {what}") from None
    except ValueError:  # an embedded NUL byte
        raise InputError(f"{field or what}: not a valid path; expected a {what}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{where}: is a folder; expected a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            f"{where}: is not a regular file ({_kind(info.st_mode)}); expected a {what}"
        )
    if info.st_size > max_bytes:
        raise InputError(
            f"{where}: {_size(info.st_size)} is too large; "
            f"expected a {what} of at most {_size(max_bytes)}"
        )
    return path


def read_bytes(
    path: str | Path,
    *,
    field: str | None = None,
    what: str = "file",
    max_bytes: int = MAX_DATA_BYTES,
) -> bytes:
    """The bytes of a checked regular file, reading at most ``max_bytes`` (files can grow)."""
    path = checked_file(path, field=field, what=what, max_bytes=max_bytes)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as err:
        raise InputError(
            f"{_where(path, field)}: cannot be read ({_reason(err)}); expected a {what}"
        ) from None
    if len(data) > max_bytes:
        raise InputError(
            f"{_where(path, field)}: is larger than {_size(max_bytes)}; expected a {what}"
        )
    return data


def decode_text(data: bytes, label: str, what: str = "UTF-8 text file") -> str:
    """UTF-8 text (a BOM is dropped), or one line giving the offset of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(
            f"{label}: is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
            f"expected a {what}"
        ) from None


def read_text(
    path: str | Path,
    *,
    field: str | None = None,
    what: str = "UTF-8 text file",
    max_bytes: int = MAX_TEXT_BYTES,
) -> str:
    """A checked file decoded as UTF-8, or one InputError line."""
    data = read_bytes(path, field=field, what=what, max_bytes=max_bytes)
    return decode_text(data, _where(Path(path), field), what)


def parse_json(text: str | bytes, label: str, *, allow_nan: bool = True) -> Any:
    """JSON with bounded integers, depth and size; every failure is one InputError line.

    Args:
        text: the document.
        label: the file name (and field) to put in front of errors.
        allow_nan: accept the non-standard ``NaN``/``Infinity`` (training histories
            hold them); otherwise they are refused here with the position.
    """
    if isinstance(text, bytes):
        text = decode_text(text, label, "UTF-8 JSON file")

    def parse_int(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            raise _Refused(
                f"an integer of {len(digits.lstrip('-'))} digits; expected at most {MAX_INT_DIGITS}"
            )
        return int(digits)

    def parse_constant(name: str) -> float:
        if not allow_nan:
            raise _Refused(f"{name} is not a number JSON allows; expected a finite number")
        return float(name)

    try:
        data = json.loads(text, parse_int=parse_int, parse_constant=parse_constant)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{label}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None
    except _Refused as err:
        raise InputError(f"{label}: {err}") from None
    except RecursionError:
        raise InputError(
            f"{label}: nested more than {MAX_JSON_DEPTH} levels deep; expected a flatter JSON file"
        ) from None
    except MemoryError:
        raise InputError(f"{label}: too large to read; expected a smaller JSON file") from None
    except ValueError as err:  # anything else the decoder refuses (e.g. a float literal overflow)
        raise InputError(f"{label}: not valid JSON ({type(err).__name__})") from None
    _check_depth(data, label)
    return data


def read_json(
    path: str | Path,
    *,
    field: str | None = None,
    what: str = "JSON file",
    max_bytes: int = MAX_JSON_BYTES,
    allow_nan: bool = True,
) -> Any:
    """Parse a checked JSON file, or raise one InputError line naming the file and the position."""
    data = read_bytes(path, field=field, what=what, max_bytes=max_bytes)
    label = _where(Path(path), field)
    return parse_json(decode_text(data, label, f"UTF-8 {what}"), label, allow_nan=allow_nan)


class _Refused(ValueError):
    """Raised from the JSON decoder's hooks; carries the message for the user."""


def _check_depth(data: Any, label: str) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH (walked with a stack, not recursion)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InputError(
                f"{label}: nested more than {MAX_JSON_DEPTH} levels deep; "
                "expected a flatter JSON file"
            )
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))


# ----------------------------------------------------------------------------- folders and outputs


def checked_folder(path: str | Path, *, field: str | None = None, what: str = "folder") -> Path:
    """``path`` if it is a folder that can be listed; else one InputError line."""
    path = Path(path)
    where = _where(path, field)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"{where}: no such folder; expected a {what}") from None
    except OSError as err:
        raise InputError(f"{where}: cannot be opened ({_reason(err)}); expected a {what}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise InputError(f"{where}: is not a folder; expected a {what}")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InputError(
            f"{where}: cannot be listed (permission denied); expected a readable {what}"
        )
    return path


def check_output(
    path: str | Path,
    *,
    inputs: tuple[str | Path | None, ...] = (),
    option: str = "-o",
    folder: bool = False,
) -> Path:
    """Refuse, before any work, an output path that cannot be written or would overwrite an input.

    Args:
        path: the file (or, with ``folder=True``, the folder) to write.
        inputs: the command's input files; writing over one of them is refused.
        option: the option's name, for the message.
        folder: the output is a folder that will be created.
    """
    path = Path(path)
    if path.is_symlink():
        raise InputError(
            f"{option}: {path} is a symbolic link; writing would replace it or the file it "
            "points to; give the real path"
        )
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        info = None  # the folder checks below say which part is wrong
    except OSError as err:
        raise InputError(f"{option}: {path} cannot be used ({_reason(err)})") from None
    if info is not None:
        if folder and not stat.S_ISDIR(info.st_mode):
            raise InputError(
                f"{option}: {path} exists and is not a folder; expected a folder to write into"
            )
        if not folder and stat.S_ISDIR(info.st_mode):
            raise InputError(f"{option}: {path} is a folder; expected a file name to write")
        if not folder and not stat.S_ISREG(info.st_mode):
            raise InputError(
                f"{option}: {path} is not a regular file ({_kind(info.st_mode)}); "
                "expected a file name"
            )
    for source in inputs:
        if source is not None and _same_file(path, Path(source)):
            raise InputError(
                f"{option}: {path} is also an input of this command; write to another file"
            )
    # The nearest existing ancestor must be a folder we may write in.
    ancestor = path if folder and info is not None else path.parent
    while True:
        try:
            ancestor_info = ancestor.stat()
            break
        except (FileNotFoundError, NotADirectoryError):
            if ancestor.parent == ancestor:
                raise InputError(f"{option}: {path}: no folder of it exists") from None
            ancestor = ancestor.parent
        except OSError as err:
            raise InputError(f"{option}: {path} cannot be used ({_reason(err)})") from None
    if not stat.S_ISDIR(ancestor_info.st_mode):
        raise InputError(
            f"{option}: {path}: {ancestor} is a file, not a folder; expected a path in a folder"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{option}: {path}: the folder {ancestor} is not writable")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


_DATA_ROOT: ContextVar[Path | None] = ContextVar("advisor_data_root", default=None)


def data_root() -> Path | None:
    """The folder data paths must lie in (``--data-root``), or None when paths are not confined."""
    return _DATA_ROOT.get()


def set_data_root(root: str | Path | None) -> None:
    """Confine data paths read from now on to ``root`` (None: no confinement)."""
    _DATA_ROOT.set(None if root is None else Path(root))


def confine(path: str | Path, root: str | Path | None, *, field: str) -> Path:
    """``path`` unchanged when ``root`` is None; else refuse it unless it lies inside ``root``.

    Symlinks are resolved first, so a link inside the root pointing out of it is refused.
    """
    path = Path(path)
    if root is None:
        return path
    try:
        real, real_root = path.resolve(), Path(root).resolve()
    except (OSError, RuntimeError):
        raise InputError(f"{field}: {path} cannot be resolved (a symlink loop?)") from None
    if real != real_root and real_root not in real.parents:
        raise InputError(
            f"{field}: {path} is outside the data root {root}; "
            "move the data there or pass another --data-root"
        )
    return path


def path_list(value: object, what: str) -> list[str | Path]:
    """``value`` as a list of paths (None -> []), or one InputError line for anything else."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, os.PathLike)) for v in value):
        return list(value)
    raise InputError(
        f"{what}: got a {type(value).__name__}; expected a list of file or folder paths"
    )


# ----------------------------------------------------------------------------- wording


def _reason(err: OSError) -> str:
    return (err.strerror or type(err).__name__).lower()


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def _size(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.1f} GiB"
    if n >= 2**20:
        return f"{n / 2**20:.1f} MiB"
    return f"{n} bytes" if n < 2**10 else f"{n / 2**10:.0f} KiB"
