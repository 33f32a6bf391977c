"""Run one fuzzing case in this process and classify what happened.

Outcomes:
  ok          exit 0 (the input was in fact valid)
  error       one ``error:`` line (or click's usage error), exit 2 (1 for an engine error)
  traceback   an exception other than the project's own escaped
  hang        still running after the time bound (stopped by SIGALRM)
  noisy       more than one line of error output, or none
  wrote       a file was left behind although the command failed
  echoed      the error repeats a line of the input file
  unexpected  exit 0 on an input that is invalid by construction

A crash (the process dies) can only be seen from outside: ``benchmarks/fuzz.py``
runs the cases in a child process and records the case it died on.
"""

from __future__ import annotations

import os
import re
import signal
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from click.testing import CliRunner

from tests.fuzz.corpus import Case

BAD = ("traceback", "hang", "noisy", "wrote", "echoed", "unexpected")

# Commands that train when a mutated plan turns out valid: a tiny run is a JAX
# compile, an epoch and a plot, which on a loaded CPU can take longer than the
# bound for reading an input.  They get this bound instead.
TRAINING = ("run", "search", "lr-find", "pretrain", "api:run", "api:search")
TRAINING_LIMIT_S = 120.0


@dataclass
class Outcome:
    name: str
    klass: str
    command: str
    outcome: str
    exit_code: int | None
    seconds: float
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


class Hang(BaseException):
    """Raised by the alarm; a BaseException, so no ``except Exception`` under test stops it."""


@contextmanager
def time_limit(seconds: float):
    def on_alarm(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def inside(folder: Path):
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _snapshot(folder: Path) -> set[str]:
    found = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in filenames + dirnames:
            found.add(os.path.relpath(os.path.join(dirpath, name), folder))
    return found


def _input_lines(folder: Path) -> set[str]:
    """Lines of the case's input files longer than a few characters (to spot an echo)."""
    lines = set()
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 1 << 20:
                for line in path.read_bytes().decode("utf-8", "replace").splitlines()[:50]:
                    if len(line.strip()) >= 12:
                        lines.add(line.strip())
        except OSError:
            continue
    return lines


MAX_MESSAGE = 1000  # one line a person reads, not an echo of a 128 KiB field
LINT_SUMMARY = re.compile(r"^\d+ rules, \d+ errors, \d+ warnings$")
SYSTEM_FILE_LINES = ("root:x:0:0", "daemon:x:")


def run_case(case: Case, folder: Path, limit_s: float = 30.0) -> Outcome:
    """Build ``case`` in the empty ``folder``, run it there and classify the result."""
    if case.command in TRAINING:
        limit_s = max(limit_s, TRAINING_LIMIT_S)
    folder.mkdir(parents=True, exist_ok=True)
    with inside(folder):
        start = time.perf_counter()
        try:
            built = case.build(folder)
        except OSError as err:  # the machine cannot make this input (e.g. no FIFOs)
            return Outcome(case.name, case.klass, case.command, "skipped", None, 0.0, str(err))
        before = _snapshot(folder)
        echo_lines = _input_lines(folder)
        exit_code, output, detail = None, "", ""
        start = time.perf_counter()
        try:
            with time_limit(limit_s):
                if callable(built):
                    exit_code, output, detail = _run_api(built)
                else:
                    exit_code, output, detail = _run_cli(built)
        except Hang:
            seconds = time.perf_counter() - start
            return Outcome(
                case.name, case.klass, case.command, "hang", None, seconds, f"> {limit_s:.0f} s"
            )
        seconds = time.perf_counter() - start
        after = _snapshot(folder)
    if detail:
        return Outcome(case.name, case.klass, case.command, "traceback", exit_code, seconds, detail)
    if exit_code == 0:
        outcome = "unexpected" if case.expect_error else "ok"
        return Outcome(case.name, case.klass, case.command, outcome, 0, seconds, output[-200:])
    lines = [line for line in output.splitlines() if line.strip()]
    if exit_code == 2 and lines and LINT_SUMMARY.match(lines[-1]):
        # `rules check` reports every issue of the knowledge base, one per line, by design
        return Outcome(case.name, case.klass, case.command, "error", exit_code, seconds, lines[-1])
    error_lines = [line for line in lines if line.startswith(("error:", "Error:"))]
    usage = any(line.startswith("Usage:") for line in lines)
    if exit_code not in (1, 2) or len(error_lines) != 1 or (not usage and len(lines) != 1):
        return Outcome(
            case.name, case.klass, case.command, "noisy", exit_code, seconds, output[-300:]
        )
    message = error_lines[0]
    if len(message) > MAX_MESSAGE:
        return Outcome(
            case.name, case.klass, case.command, "noisy", exit_code, seconds, message[:300]
        )
    if not case.command.startswith("rules"):  # rule files are named by their ids, on purpose
        echo_lines = {line for line in echo_lines if line not in message.split(": ")[0]}
    else:
        echo_lines = set()
    if any(line in message for line in echo_lines) or any(
        marker in message for marker in SYSTEM_FILE_LINES
    ):
        return Outcome(
            case.name, case.klass, case.command, "echoed", exit_code, seconds, message[:300]
        )
    written = sorted(after - before)
    if written:
        return Outcome(
            case.name,
            case.klass,
            case.command,
            "wrote",
            exit_code,
            seconds,
            f"{message[:200]} | left {written[:5]}",
        )
    return Outcome(case.name, case.klass, case.command, "error", exit_code, seconds, message[:300])


def _run_cli(argv: list[str]) -> tuple[int | None, str, str]:
    from advisor.cli.commands import cli

    result = CliRunner().invoke(cli, argv, prog_name="advisor", catch_exceptions=True)
    exception = result.exception
    if exception is not None and not isinstance(exception, SystemExit):
        text = "".join(
            traceback.format_exception(type(exception), exception, exception.__traceback__)
        )
        return result.exit_code, result.output, text[-1500:]
    return result.exit_code, result.output, ""


def _run_api(call) -> tuple[int | None, str, str]:
    from advisor.contract.errors import AdvisorError

    try:
        call()
    except AdvisorError as err:
        return err.exit_code, f"error: {err}", ""
    except Exception as err:  # noqa: BLE001 - every other exception is what we are looking for
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        return None, "", text[-1500:]
    return 0, "", ""
