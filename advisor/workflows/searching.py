"""Search a plan's hyperparameters: ``advisor.search(plan)`` and the ``advisor search`` command.

The engine (and so jax) is imported only when a search starts.  ``search``
runs or joins the plan's Optuna study and returns the ``SearchResult``;
``workers=N`` starts N worker processes on this machine (``worker_main``, a
library entry point, not the CLI) that share the study through its journal
file, then writes the report from the finished study.
Workers on other machines join the same study by running ``advisor search``
with the same ``--storage`` (a shared journal file or a database URL) and
``--study-name``.  A worker that dies is survived: its trials lose their
heartbeat and the others fail and retry them (``engine.searching.workers``).
The ``advisor search`` and ``advisor lr-find`` bodies are in ``advisor.cli``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advisor.contract.errors import EngineError
from advisor.contract.io import write_model
from advisor.contract.loading import load_plan
from advisor.contract.schemas import LrFindReport, Plan, SearchResult
from advisor.expert.rules import load_rules

if TYPE_CHECKING:
    pass


def _base_dir(plan) -> Path:
    return Path(plan).parent if isinstance(plan, (str, Path)) else Path(".")


def default_out_dir(plan: Plan) -> Path:
    """searches/<name> when no folder is given."""
    return Path("searches") / (plan.name or plan.task)


@dataclass(frozen=True)
class SearchOptions:
    """How a search runs (the plan's search section says what it searches), as one value.

    Built once by ``search`` or the CLI and handed down to the workers and the engine.
    """

    storage: str | None = None  # journal file or database URL (default OUT/study.journal)
    study_name: str | None = None  # default: the plan's name
    device: str | None = None  # auto, cpu, gpu or tpu (default: the plan's)
    mode: str | None = None  # population, sequential, or None/auto to time both
    batch: int | None = None  # trials asked for at once
    progress: Any = None  # a bar: True/False, None (only on a terminal), or a bar factory
    heartbeat_timeout: float | None = None  # seconds before a silent trial is retried

    def timeout(self) -> dict:
        """The heartbeat timeout as keyword arguments (none: the engine's default)."""
        return (
            {} if self.heartbeat_timeout is None else {"heartbeat_timeout": self.heartbeat_timeout}
        )


def search(
    plan: Plan | dict | str | Path,
    out_dir: str | Path | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    device: str | None = None,
    mode: str | None = None,
    batch: int | None = None,
    workers: int = 1,
    progress: bool | None = None,
    test_best: bool = True,
    heartbeat_timeout: float | None = None,
) -> SearchResult:
    """Search the plan's ``search.space`` and write the leaderboard, best plan and picture.

    Args:
        plan: a Plan, a dict or a path to plan.json with a ``search`` section.
        out_dir: the search directory (default searches/<name>).
        storage: journal file path or database URL to keep the study in
            (default out_dir/study.journal); other workers join through it.
        study_name: the study to create or join (default: the plan's name).
        device: auto, cpu, gpu or tpu (default: the plan's).
        mode: "population" (vmapped), "sequential", or None to time both and keep the faster.
        batch: trials asked for at once (default: a quarter of n_trials, 2 to 64).
        workers: processes on this machine sharing the study.
        progress: show a progress bar (None = only on a terminal).
        test_best: with a test split in the plan, score the best trial on it
            once selection is done (``score_best_trial``).
        heartbeat_timeout: seconds without a heartbeat after which a worker's running
            trial is failed and retried (default ``engine.searching.workers.HEARTBEAT_TIMEOUT``).

    Raises:
        InputError: an empty or inconsistent space, a field the plan lacks, a
            storage that cannot be opened.

    Example:
        >>> plan = "examples/plans/wine_random_search.json"
        >>> result = search(plan, out_dir="searches/wine")  # doctest: +SKIP
    """
    options = SearchOptions(storage, study_name, device, mode, batch, progress, heartbeat_timeout)
    return search_with(plan, out_dir, options, workers=workers, test_best=test_best)


def search_with(
    plan: Plan | dict | str | Path,
    out_dir: str | Path | None,
    options: SearchOptions,
    *,
    workers: int = 1,
    test_best: bool = True,
) -> SearchResult:
    """``search`` with its runtime options as one ``SearchOptions``."""
    loaded = load_plan(plan)
    from engine.searching.space import check_space

    check_space(loaded, str(plan) if isinstance(plan, (str, Path)) else "plan")
    out = Path(out_dir or default_out_dir(loaded))
    if workers > 1:
        result = _run_workers(loaded, out, _base_dir(plan), options, workers)
    else:
        result = _engine_search(loaded, out, _base_dir(plan), options)
    return score_best_trial(result, loaded, options.device) if test_best else result


def rule_priorities() -> dict[str, int]:
    """Rule id -> priority in the built-in rule base (for the rules a searched value overrides)."""
    return {rule.id: rule.priority for rule in load_rules([])}


def _engine_search(
    plan: Plan,
    out: Path,
    base_dir: Path,
    options: SearchOptions,
    *,
    worker: str | None = None,
    write_summary: bool = True,
    report: Callable[[str], None] | None = None,
) -> SearchResult:
    from engine.searching.search import run_search

    return run_search(
        plan,
        out,
        base_dir,
        storage=options.storage,
        study_name=options.study_name,
        device=options.device,
        mode=options.mode,
        batch=options.batch,
        worker=worker,
        progress=options.progress,
        report=report or _warn,
        write_summary=write_summary,
        priorities=rule_priorities(),
        **options.timeout(),
    )


def score_best_trial(result: SearchResult, plan: Plan, device: str | None) -> SearchResult:
    """The best trial's test score, measured once, after selection on validation is final.

    Trials keep no weights, so the best trial's plan is trained again (same
    seed, same epochs) into OUT/best_trial and its final model scored on the
    test split; no trial's ranking ever saw the test rows.  Without a test
    split in the plan, ``result`` comes back unchanged.
    """
    has_test = plan.data.test is not None or plan.data.test_fraction > 0
    if result.best_trial is None or not has_test:
        return result
    from advisor.diagnostics.diagnosis import write_diagnosis
    from engine.run import RunOptions, run_plan
    from engine.searching.search import trial_dir
    from engine.searching.search_report import SUMMARY

    out = Path(result.out_dir)
    best = load_plan(trial_dir(out, result.best_trial) / "plan.json")
    options = RunOptions(
        out_dir=out / "best_trial",
        device=device,
        report=_warn,
        progress=False,
        overwrite=True,
        diagnose=write_diagnosis,
    )
    run = run_plan(best, options)
    result = result.model_copy(update={"best_test": run.test_metrics, "best_run": run.run_dir})
    write_model(out / SUMMARY, result)
    return result


def search_worker(
    plan: Plan, out: Path, base_dir: Path, options: SearchOptions, index: int
) -> None:
    """One worker of ``search(workers=N)``: trains its share of the study's trials, quietly.

    Worker ``index`` (1..N) seeds its sampler from the plan's seed and its name
    ("worker N", ``engine.searching.workers.worker_seed``); the report is left to the process
    that started the workers.
    """
    quiet = replace(options, progress=False)
    _engine_search(
        plan, out, base_dir, quiet, worker=f"worker {index}", write_summary=False, report=_ignore
    )


def worker_main() -> None:
    """A worker process's entry point: the job (JSON on stdin) to ``search_worker``.

    ``search(workers=N)`` starts ``python -c "from advisor.workflows.searching import
    worker_main; worker_main()"`` per worker; a failure is one line on stderr, exit 1.
    """
    job = json.loads(sys.stdin.read())
    try:
        search_worker(
            Plan.model_validate(job["plan"]),
            Path(job["out"]),
            Path(job["base_dir"]),
            SearchOptions(**job["options"]),
            job["index"],
        )
    except Exception as err:  # noqa: BLE001 - any failure is reported in one line
        text = str(err).strip()
        print(text.splitlines()[-1] if text else type(err).__name__, file=sys.stderr)
        sys.exit(1)


_WORKER = "from advisor.workflows.searching import worker_main; worker_main()"


def _run_workers(
    plan: Plan, out: Path, base_dir: Path, options: SearchOptions, workers: int
) -> SearchResult:
    """Start ``workers`` processes here (``worker_main``) that share one study, then report.

    A worker that fails is survived when the others finished the study (its trials were
    failed and retried); otherwise its last error line is raised."""
    from engine.searching.search import JOURNAL, open_storage, open_study

    storage = options.storage or str(out / JOURNAL)
    name = options.study_name or plan.name or "search"
    options = replace(options, storage=storage, study_name=name)
    # the study is created once, before the workers race to join it
    open_study(plan, open_storage(storage, out, **options.timeout()), name)
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}  # workers share one accelerator
    job = {"plan": plan.model_dump(mode="json"), "out": str(out), "base_dir": str(base_dir)}
    job["options"] = asdict(options)
    processes = []
    for index in range(1, workers + 1):
        process = subprocess.Popen(
            [sys.executable, "-c", _WORKER],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        process.stdin.write(json.dumps({**job, "index": index}))
        process.stdin.close()
        processes.append(process)
    errors = [process.stderr.read() for process in processes]
    failed = [
        (index, process.returncode, text)
        for index, (process, text) in enumerate(zip(processes, errors, strict=True), start=1)
        if process.wait() != 0
    ]
    for index, code, text in failed:
        said = text.strip().splitlines()
        last = f"killed by signal {-code}" if code < 0 else (said or [f"exit {code}"])[-1]
        if not _finished(plan, out, storage, name, options.timeout()):
            raise EngineError(f"search worker {index} of {workers} failed: {last}")
        _warn(f"search worker {index} of {workers} failed ({last}); the others finished its trials")
    # the study is complete: this run only reads it back and writes the report
    return _engine_search(plan, out, base_dir, replace(options, device="cpu", progress=False))


def _finished(plan: Plan, out: Path, storage: str, name: str, timeout: dict) -> bool:
    """Whether the study holds its budget of trials and none is running or waiting."""
    import optuna

    from engine.searching.search import budget, counted_trials, open_storage

    study = optuna.load_study(study_name=name, storage=open_storage(storage, out, **timeout))
    trials = study.get_trials(deepcopy=False)
    busy = {optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING}
    return counted_trials(trials) >= budget(plan) and not any(t.state in busy for t in trials)


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _ignore(line: str) -> None:
    """A worker's warnings: the process that started it reports the search."""


def lr_find_summary(report: LrFindReport, profile_path: Path | None, written: Path | None) -> str:
    """The sweeps in a few lines: each seed's best rate, then the suggestion or why none."""
    lines = [
        f"lr-find: {len(report.learning_rates)} rates from {report.learning_rates[0]:.3g} to "
        f"{report.learning_rates[-1]:.3g}, {report.steps} steps each, {len(report.seeds)} seeds"
    ]
    for sweep in report.seeds:
        best = (
            f"{sweep.learning_rate:.3g}"
            if sweep.learning_rate is not None
            else "none (every rate diverged)"
        )
        lines.append(f"  seed {sweep.seed}: best rate {best}")
    if report.suggestion is not None:
        lines.append(
            f"suggested learning rate: {report.suggestion.learning_rate:.3g} "
            f"(seeds within {report.suggestion.spread:.2f} decades)"
        )
    else:
        lines.append(f"no suggestion: {report.refused}")
    if written is not None:
        lines.append(f"wrote lr_find into {written}; advisor recommend {written} uses it")
    elif profile_path is not None:
        lines.append(f"{profile_path} left as it was")
    if report.plot:
        lines.append(f"plot: {report.plot}")
    return "\n".join(lines)


def summary(result: SearchResult, top: int = 10) -> str:
    """What the search found, the leaderboard's top rows and where the files are, as text."""
    lines = [f"search: {result.out_dir}  ({result.method}, study {result.study_name!r})"]
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts.items()))
    lines.append(f"trials: {counts or 'none'}")
    if result.best_trial is not None:
        lines.append(
            f"best: trial {result.best_trial}, {result.metric} {result.best_value:.4g} "
            f"-> {result.best_plan}"
        )
    if result.best_test:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(result.best_test.items()))
        lines.append(
            f"test (best trial after selection, retrained in {result.best_run}, "
            f"measured once): {shown}"
        )
    for timing in result.modes:
        speed = ""
        if timing.speedup:
            speed = f" (a population step timed at {timing.speedup:.2f}x the trials' steps in turn"
            if timing.expected_population_s is not None:
                speed += (
                    f"; with compiles, {timing.expected_population_s:.2g} s vmapped"
                    f" vs {timing.expected_sequential_s:.2g} s in turn"
                )
            speed += ")"
        lines.append(f"trained: {timing.structure}: {timing.trials} trials {timing.mode}{speed}")
    if result.trials_per_hour:
        lines.append(f"speed: {result.trials_per_hour:,.0f} trials per hour")
    board = Path(result.leaderboard)
    if board.exists():
        lines += ["", *format_table(read_leaderboard(board, top))]
        lines.append(
            f"files: {board.name}, search.png, trials/NNNN/plan.json + history.json"
            + (", best_plan.json" if result.best_plan else "")
        )
    return "\n".join(lines)


def read_leaderboard(path: Path, top: int) -> list[list[str]]:
    """The header and first ``top`` rows of leaderboard.csv (seconds and mode left out)."""
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    keep = [i for i, name in enumerate(rows[0]) if name not in ("seconds", "mode")]
    return [[_short(row[i]) for i in keep] for row in rows[: top + 1]]


def _short(cell: str) -> str:
    try:
        value = float(cell)
    except ValueError:
        return cell
    return (
        cell
        if value.is_integer() and "." not in cell and "e" not in cell.lower()
        else f"{value:.4g}"
    )


def format_table(rows: list[list[str]]) -> list[str]:
    """Rows as aligned text columns, a rule under the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines
