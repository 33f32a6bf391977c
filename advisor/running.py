"""Run a plan on the engine: ``advisor.run(plan)`` and the ``advisor run`` command.

This module imports the engine (and so jax) only when a run starts, keeping
``import advisor`` light.  ``run`` trains and returns the ``RunResult``;
``run_files`` is the CLI body: load the plan file, run it with relative paths
taken from the plan's folder, print a short summary (or the RunResult as JSON).
"""

from __future__ import annotations

from pathlib import Path

import click

from advisor.loading import load_plan, resolve_plan_paths
from advisor.schemas import Plan, RunResult


def run(
    plan: Plan | dict | str | Path, out_dir: str | Path | None = None, device: str | None = None
) -> RunResult:
    """Train a plan and write its run directory.

    A plan with a ``search`` section is searched first (into RUN_DIR/search,
    ``advisor.search``), and the run trains the best plan the search found.

    Args:
        plan: a Plan, a dict or a path to plan.json (relative data paths and
            model.base are then taken from the plan file's folder).
        out_dir: the run directory (default: the plan's output_dir, else runs/<name>-<time>).
        device: auto, cpu, gpu or tpu (default: the plan's device).

    Returns:
        The RunResult: where the history, checkpoint, curves and diagnosis are.

    Raises:
        InputError: the plan or its data cannot give a correct run; nothing is written.
        EngineError: the device is missing, or the loss diverged (what was learned is kept).

    Example:
        >>> result = run("examples/plans/digits_mlp.json", out_dir="runs/digits")  # doctest: +SKIP
    """
    from engine.run import run_plan

    base_dir = Path(plan).parent if isinstance(plan, (str, Path)) else Path(".")
    loaded = resolve_plan_paths(load_plan(plan), base_dir)
    if loaded.search is not None:
        return _search_then_run(plan, loaded, out_dir, device, base_dir)
    return run_plan(loaded, out_dir, device, base_dir=base_dir, report=_warn)


def _search_then_run(
    plan_arg, plan: Plan, out_dir, device: str | None, base_dir: Path
) -> RunResult:
    """A plan with a search section: search into RUN_DIR/search, then train its best plan there."""
    import time

    from advisor.errors import EngineError
    from advisor.io import write_model
    from advisor.searching import search
    from engine.run import run_plan

    run_dir = Path(
        out_dir
        or plan.output_dir
        or Path("runs") / f"{plan.name or plan.task}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    # the run below trains the best plan and scores it on the test split itself
    found = search(plan_arg, run_dir / "search", device=device, test_best=False)
    if found.best_plan is None:
        raise EngineError(
            "the search finished no trial, so there is no best plan to run; "
            f"see {found.leaderboard}"
        )
    result = run_plan(load_plan(found.best_plan), run_dir, device, base_dir=base_dir, report=_warn)
    result = result.model_copy(update={"search": str(Path(found.out_dir) / "search.json")})
    write_model(Path(result.run_dir) / "run.json", result)
    return result


def _warn(line: str) -> None:
    click.echo(line, err=True)


def run_files(
    plan_path: Path,
    out_dir: Path | None,
    device: str | None,
    as_json: bool,
    cluster: dict | None = None,
) -> None:
    """The ``advisor run`` command: train, then print a summary or the RunResult JSON.

    ``cluster``: ``engine.distributed.Cluster``'s fields; join the other processes
    first when any is given (multi-host).
    """
    if cluster and any(v not in (None, False) for v in cluster.values()):
        from engine.distributed import Cluster, initialize

        initialize(Cluster(**cluster))
    result = run(plan_path, out_dir, device)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    click.echo(summary(result))


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
    if result.diagnosis:
        lines.append(_diagnosis_line(Path(result.diagnosis)))
    lines.append(
        "files: history.json, metrics.json, model.safetensors, preprocessing.json, curves.png"
        + (", diagnosis.json, next_plan.json" if result.next_plan else "")
    )
    return "\n".join(lines)


def _baseline_line(name: str, scores: dict[str, float], network: dict[str, float]) -> str:
    """One baseline's validation scores beside the network's: ``accuracy 0.91 (network 0.89)``."""
    shown = ", ".join(
        f"{key.removeprefix('val_')} {value:.4g}"
        + (f" (network {network[key]:.4g})" if key in network else "")
        for key, value in sorted(scores.items())
    )
    return f"baseline {name}, same split: {shown}"


def _diagnosis_line(path: Path) -> str:
    from advisor.io import load_model
    from advisor.schemas import Diagnosis

    diagnosis = load_model(Diagnosis, path)
    names = ", ".join(p.name for p in diagnosis.problems) or "nothing found"
    fixes = f"; {len(diagnosis.fixes)} fix(es) in next_plan.json" if diagnosis.fixes else ""
    return f"diagnosis: {names}{fixes}"
