"""Run a plan on the engine: ``advisor.run(plan)`` and the ``advisor run`` command.

This module imports the engine (and so jax) only when a run starts, keeping
``import advisor`` light.  ``run`` trains and returns the ``RunResult``;
``summary`` is the few lines ``advisor run`` prints (its body is in ``advisor.cli``).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from advisor.contract.errors import InputError
from advisor.contract.loading import load_plan, resolve_plan_paths
from advisor.contract.schemas import Plan, RunResult
from advisor.diagnostics.diagnosis import write_diagnosis

if TYPE_CHECKING:  # advisor imports the engine (and jax) only when a run starts
    from engine.run import RunOptions


def run(
    plan: Plan | dict | str | Path | None = None,
    out_dir: str | Path | None = None,
    device: str | None = None,
    *,
    callbacks: list | tuple = (),
    resume: str | Path | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> RunResult:
    """Train a plan and write its run directory, or continue an interrupted one.

    A plan with a ``search`` section is searched first (into RUN_DIR/search,
    ``advisor.search``), and the run trains the best plan the search found.

    Args:
        plan: a Plan, a dict or a path to plan.json (relative data paths and
            model.base are then taken from the plan file's folder); None with ``resume``.
        out_dir: the run directory (default: the plan's output_dir, else runs/<name>-<time>);
            it must be empty or new unless ``overwrite``.
        device: auto, cpu, gpu or tpu (default: the plan's device).
        callbacks: objects with ``on_epoch_end(state, logs) -> stop?`` or such functions,
            called after every epoch (``engine.training.callbacks.EpochState``; True stops training).
        resume: a run folder an interrupted run left: continue it from its newest
            complete checkpoint with its own plan.json.
        overwrite: replace the run in a non-empty ``out_dir`` (only the run's own files go).
        progress: the progress bar (None: when stdout is a terminal; else one line per epoch).

    Returns:
        The RunResult: where the history, checkpoint, curves and diagnosis are.

    Raises:
        InputError: the plan, its data or the run folder cannot give a correct run;
            nothing is written.
        EngineError: the device is missing, or the loss diverged (what was learned is kept),
            or SIGINT/SIGTERM stopped the run (a checkpoint is kept; exit_code 130/143).

    Example:
        >>> result = run("examples/plans/digits_mlp.json", out_dir="runs/digits")  # doctest: +SKIP
        >>> result = run(resume="runs/digits")  # after an interruption  # doctest: +SKIP
    """
    from engine.run import RunOptions, run_plan

    options = RunOptions(
        out_dir=out_dir,
        device=device,
        report=_warn,
        progress=progress,
        callbacks=callbacks,
        overwrite=overwrite,
        diagnose=write_diagnosis,
    )
    if resume is not None:
        return _resume(Path(resume), plan, options)
    if plan is None:
        raise InputError("plan: none given; expected a plan (or resume=RUN_DIR)")
    base_dir = Path(plan).parent if isinstance(plan, (str, Path)) else Path(".")
    loaded = resolve_plan_paths(load_plan(plan), base_dir)
    options = replace(options, base_dir=base_dir)
    if loaded.search is not None:
        return _search_then_run(plan, loaded, options)
    return run_plan(loaded, options)


def _resume(run_dir: Path, plan, options: RunOptions) -> RunResult:
    """Continue the run in ``run_dir`` with the plan.json it wrote when it started."""
    from engine.outputs.run_folder import check_run_dir
    from engine.run import run_plan

    if plan is not None or options.out_dir is not None:
        raise InputError(
            "--resume: the run folder's own plan.json and folder are used; "
            "give no plan and no --out with it"
        )
    check_run_dir(run_dir, resume=True, option="--resume")
    loaded = load_plan(run_dir / "plan.json")
    return run_plan(loaded, replace(options, out_dir=run_dir, resume=True, overwrite=False))


def _search_then_run(plan_arg, plan: Plan, options: RunOptions) -> RunResult:
    """A plan with a search section: search into RUN_DIR/search, then train its best plan there."""
    import shutil
    import time

    from advisor.contract.errors import EngineError
    from advisor.contract.io import write_model
    from advisor.workflows.searching import search
    from engine.outputs.run_folder import check_run_dir
    from engine.run import run_plan

    run_dir = Path(
        options.out_dir
        or plan.output_dir
        or Path("runs") / f"{plan.name or plan.task}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    check_run_dir(run_dir, overwrite=options.overwrite)
    search_dir = run_dir / "search"
    if options.overwrite and search_dir.is_dir() and not search_dir.is_symlink():
        shutil.rmtree(search_dir)  # the search is this run's own too
    # the run below trains the best plan and scores it on the test split itself
    found = search(plan_arg, search_dir, device=options.device, test_best=False)
    if found.best_plan is None:
        raise EngineError(
            "the search finished no trial, so there is no best plan to run; "
            f"see {found.leaderboard}"
        )
    # the folder holds the search just made, and the run files go beside it (overwrite)
    result = run_plan(load_plan(found.best_plan), replace(options, out_dir=run_dir, overwrite=True))
    result = result.model_copy(update={"search": str(Path(found.out_dir) / "search.json")})
    write_model(Path(result.run_dir) / "run.json", result)
    return result


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def summary(result: RunResult) -> str:
    """A few lines: where the run is, its final metrics, how it stopped, what the diagnosis says."""
    lines = [f"run: {result.run_dir}  (device {result.device})"]
    if result.search:
        lines.append(f"searched first: {result.search}; this run trains its best_plan.json")
    if result.metrics:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(result.metrics.items()))
        epoch = f" at best epoch {result.best_epoch}" if result.best_epoch else ""
        lines.append(f"validation{epoch}: {shown}")
    for name, scores in result.baselines.items():
        lines.append(_baseline_line(name, scores, result.metrics))
    if result.test_metrics:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(result.test_metrics.items()))
        lines.append(f"test (held out, final model, measured once): {shown}")
    if result.stopped_reason:
        lines.append(f"stopped: {result.stopped_reason}")
    if result.timing:
        lines.append(_timing_line(result))
    if result.diagnosis:
        lines.append(_diagnosis_line(Path(result.diagnosis)))
    if result.samples:
        lines.append(f"samples: {result.samples[-1]} (and {len(result.samples) - 1} earlier grids)")
    lines.append(
        "files: history.json, history.csv, metrics.json, model.safetensors"
        + (", preprocessing.json" if not result.samples else "")
        + ", curves.png, events.out.tfevents.* (tensorboard --logdir)"
        + (", samples_*.png" if result.samples else "")
        + (", checkpoints/" if (Path(result.run_dir) / "checkpoints").is_dir() else "")
        + (", diagnosis.json, next_plan.json" if result.next_plan else "")
    )
    return "\n".join(lines)


def _timing_line(result: RunResult) -> str:
    """The ``time:`` line: training seconds, compile seconds, samples per second, resume epoch."""
    timing = result.timing
    text = f"time: {timing.get('elapsed_s', 0):.1f} s training"
    if "compile_s" in timing:
        text += f" (compile {timing['compile_s']:.1f} s)"
    if "samples_per_s" in timing:
        text += f", {timing['samples_per_s']:,.0f} samples/s"
    if result.resumed_from_epoch is not None:
        text += f"; resumed after epoch {result.resumed_from_epoch}"
    return text


def _baseline_line(name: str, scores: dict[str, float], network: dict[str, float]) -> str:
    """One baseline's validation scores beside the network's: ``accuracy 0.91 (network 0.89)``."""
    shown = ", ".join(
        f"{key.removeprefix('val_')} {value:.4g}"
        + (f" (network {network[key]:.4g})" if key in network else "")
        for key, value in sorted(scores.items())
    )
    return f"baseline {name}, same split: {shown}"


def _diagnosis_line(path: Path) -> str:
    from advisor.contract.io import load_model
    from advisor.contract.schemas import Diagnosis

    diagnosis = load_model(Diagnosis, path)
    names = ", ".join(p.name for p in diagnosis.problems) or "nothing found"
    fixes = f"; {len(diagnosis.fixes)} fix(es) in next_plan.json" if diagnosis.fixes else ""
    return f"diagnosis: {names}{fixes}"
