"""The bodies of the ``advisor`` commands: load, call one library function, print the result.

Each ``*_files`` function is what one command does after click parsed its options;
the library functions it calls return values and print nothing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from advisor.cli.render import bars, print_diagnosis
from advisor.contract.errors import InputError
from advisor.contract.io import write_model
from advisor.contract.loading import load_plan, load_profile
from advisor.contract.schemas import Evaluation, LrFindReport, Profile
from advisor.diagnostics.diagnosis import diagnose, revise_plan
from advisor.workflows.bases import pretrain
from advisor.workflows.profiling import parse_source, profile_data
from advisor.workflows.profiling import summary as profile_summary
from advisor.workflows.running import run
from advisor.workflows.running import summary as run_summary
from advisor.workflows.searching import SearchOptions, lr_find_summary, search_with
from advisor.workflows.searching import summary as search_summary
from advisor.workflows.using import load, predict_files

if TYPE_CHECKING:
    from engine.searching.lr_find import SweepOptions


def diagnose_files(
    history_path: str | Path,
    plan_path: str | Path | None,
    output: str | Path | None,
    as_json: bool,
    task: str | None = None,
    n_classes: int | None = None,
    run: str | None = None,
) -> None:
    """``advisor diagnose HISTORY [--run R] [--plan P] [-o NEXT] [--json] [--task T --classes K]``.

    ``task`` and ``n_classes`` stand in for a plan's when there is none: they set the
    chance level that underfitting and overshooting are judged against.  A folder (or
    notebook) holding several runs gives one diagnosis per run, each labelled with its
    run name, or only the run ``run`` names; runs are never merged.

    Raises:
        InputError: unreadable input, an unknown ``run``, ``-o`` without ``--plan``, or
            ``-o`` for several runs at once; nothing is written.
    """
    from advisor.readers import load_histories

    histories = load_histories(history_path)
    if run is not None:
        tails = [name for name in histories if name.endswith("/" + run)]
        run = tails[0] if run not in histories and len(tails) == 1 else run
        if run not in histories:
            raise InputError(
                f"--run {run}: no such run in {history_path}; expected one of: "
                + ", ".join(histories)
            )
        histories = {run: histories[run]}
    if output is not None and plan_path is None:
        raise InputError(
            "-o/--output: a revised plan needs --plan PLAN, the plan that produced the history"
        )
    if output is not None and len(histories) > 1:
        raise InputError(
            f"-o/--output: {history_path} holds {len(histories)} runs; choose the one the plan "
            "produced with --run NAME (" + ", ".join(histories) + ")"
        )
    diagnoses = {}
    for name, history in histories.items():
        if task is not None or n_classes is not None:
            history = history.model_copy(
                update={"task": task or history.task, "n_classes": n_classes or history.n_classes}
            )
        if plan_path is not None:
            diagnosis, next_plan = revise_plan(history, plan_path)
            if output is not None:  # its paths absolute, so it runs from the folder it is in
                from advisor.contract.loading import resolve_plan_paths

                write_model(output, resolve_plan_paths(next_plan, Path(plan_path).parent))
        else:
            diagnosis = diagnose(history)
        diagnoses[name] = diagnosis
    if as_json:
        if len(diagnoses) == 1:
            click.echo(next(iter(diagnoses.values())).model_dump_json(indent=2))
        else:
            parts = [
                f"  {json.dumps(name)}: {d.model_dump_json()}" for name, d in diagnoses.items()
            ]
            click.echo("{\n" + ",\n".join(parts) + "\n}")
        return
    for index, (name, diagnosis) in enumerate(diagnoses.items()):
        if len(diagnoses) > 1:
            header = f"== run {name} ({index + 1} of {len(diagnoses)}) =="
            click.echo(("\n" if index else "") + header)
        print_diagnosis(diagnosis, output)


def run_files(
    plan_path: Path | None,
    out_dir: Path | None,
    device: str | None,
    as_json: bool,
    resume: Path | None = None,
    overwrite: bool = False,
    cluster: dict | None = None,
) -> None:
    """The ``advisor run`` command: train, then print a summary or the RunResult JSON.

    An advice-only plan (``data.source`` null: it names no data) is skipped with one line,
    exit 0: it is a recommendation to read, not a run that failed.  ``cluster``:
    ``engine.runtime.distributed.Cluster``'s fields; join the other processes first when any is
    given (multi-host).
    """
    if plan_path is None and resume is None:
        raise InputError("PLAN: none given; expected a plan file, or --resume RUN_DIR")
    if resume is None and load_plan(plan_path).data.source is None:
        click.echo(
            f"{plan_path}: advice only (data.source is null: the plan names no data), "
            "so there is nothing to train; set data.source to run it"
        )
        return
    if out_dir is not None and resume is None:
        from engine.outputs.run_folder import check_run_dir  # before the plan is even read

        check_run_dir(out_dir, overwrite=overwrite)
    if cluster and any(v not in (None, False) for v in cluster.values()):
        from engine.runtime.distributed import Cluster, initialize

        initialize(Cluster(**cluster))
    result = run(plan_path, out_dir, device, resume=resume, overwrite=overwrite, progress=bars())
    if as_json:
        click.echo(result.model_dump_json(indent=2))
        return
    click.echo(run_summary(result))


def search_files(
    plan_path: Path,
    out_dir: Path | None,
    options: SearchOptions,
    workers: int,
    quiet: bool,
    as_json: bool,
) -> None:
    """The ``advisor search`` command: search, then print the leaderboard (or the JSON result)."""
    # the workers' options travel as JSON, so only a search in this process draws rich's bar
    options = replace(options, progress=False if quiet else (bars() if workers <= 1 else None))
    result = search_with(plan_path, out_dir, options, workers=workers)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    elif not quiet:
        click.echo(search_summary(result))


def lr_find_files(
    plan_path: Path,
    options: SweepOptions,
    profile_path: Path | None,
    out_dir: Path | None,
    as_json: bool,
) -> LrFindReport:
    """The ``advisor lr-find`` command: sweep, report, and write the suggestion into a profile."""
    from engine.searching.lr_find import lr_find

    plan = load_plan(plan_path)
    profile = (
        load_profile(profile_path) if profile_path is not None else None
    )  # a bad profile fails before training
    report = lr_find(plan, plan_path.parent, options, out_dir=out_dir)
    if out_dir is not None:
        write_model(Path(out_dir) / "lr_find.json", report)
    written = None
    if profile is not None and report.suggestion is not None:
        write_model(profile_path, profile.model_copy(update={"lr_find": report.suggestion}))
        written = profile_path
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        click.echo(lr_find_summary(report, profile_path, written))
    return report


def profile_files(data: str, output: Path | None, as_json: bool, **options) -> Profile:
    """The ``advisor profile`` command body: profile, write, print a summary or the JSON."""
    from advisor.contract.io import write_atomic

    source_options = {
        k: options.pop(k)
        for k in ("target", "classes", "subsample", "n_samples", "image_size", "color_mode")
    }
    source = parse_source(data, **source_options)
    if hasattr(source, "path") and Path(source.path).exists():
        # absolute, so the profile and the plans made from it run from any folder
        source = source.model_copy(update={"path": str(Path(source.path).resolve())})
    profile = profile_data(source, **options)
    # margin_classifier and flip_invariant are wishes and domain knowledge the data cannot show:
    # the profile leaves them out (every flag it writes is measured) for the user to add
    text = profile.model_dump_json(
        indent=2, exclude_none=True, exclude={"margin_classifier", "flip_invariant"}
    )
    if output is not None:  # unset fields left out: the file reads like one a person wrote
        write_atomic(output, text + "\n")
    if as_json:
        click.echo(text)
        return profile
    click.echo(profile_summary(profile) + (f"\nwrote {output}" if output is not None else ""))
    return profile


def pretrain_files(paths: list[Path], force: bool, as_json: bool) -> None:
    """The ``advisor pretrain`` command body."""
    built = pretrain(paths, force)
    if as_json:
        click.echo(json.dumps([b.__dict__ for b in built], indent=2))
        return
    for b in built:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(b.metrics.items()))
        state = "built" if b.trained else "up to date"
        click.echo(f"{state}: {b.checkpoint}  ({b.plan}{'; ' + shown if shown else ''})")


def import_base_files(source: str, out_dir: Path) -> None:
    """The ``advisor import-base`` command body: convert, then say what the base is."""
    from engine.pretrained.imports import import_base
    from engine.pretrained.transfer import base_model, read_base

    import_base(source, out_dir)
    _, structure, _ = read_base(str(out_dir))
    model = base_model(structure)
    blocks = model.stage_blocks or [model.blocks_per_stage] * len(model.filters or [])
    click.echo(
        f"wrote {out_dir}: resnet ({model.block} blocks {blocks}, widths {model.filters}, "
        f"{model.output_units} outputs) from {source}; use it as model.base or advisor profile DATA --base {out_dir}"
    )


def evaluate_files(run_dir: Path, data: str, as_json: bool) -> Evaluation:
    """``advisor evaluate``: print the metrics, or the Evaluation as JSON."""
    evaluation = load(run_dir).evaluate_data(data)
    if as_json:
        click.echo(evaluation.model_dump_json(indent=2))
    else:
        click.echo(f"{run_dir} on {data}: {evaluation.n} examples ({evaluation.task})")
        for name, value in evaluation.metrics.items():
            click.echo(f"  {name:<14} {value:.4f}")
    return evaluation


def export_files(run_dir: Path, output: Path) -> Path:
    """``advisor export``: the forward pass as serialized StableHLO, any batch size."""

    model = load(run_dir)
    written = model.export(output)
    click.echo(
        f"wrote {written}: raw inputs [batch, {', '.join(map(str, model.plan.input_shape))}], "
        "scaling and weights inside"
    )
    return written


def predict_file(run_dir: Path, input_: str, output: Path) -> int:
    """``advisor predict``: a prediction for every row of INPUT, into OUTPUT, with a bar."""
    n = predict_files(run_dir, input_, output, progress=bars())
    click.echo(f"wrote {output}: {n} predictions ({load_plan(Path(run_dir) / 'plan.json').task})")
    return n
