"""The ``advisor`` command: click only — parse, call the Python API, print.

Errors are translated once, here: an ``AdvisorError`` becomes one line on
stderr and its exit code (2 for bad input), never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from advisor import __version__
from advisor.contract.errors import AdvisorError, InputError
from advisor.contract.schemas import (
    MAX_COUNT,
    MAX_IMAGE_SIDE,
    MAX_LEARNING_RATE,
    MAX_LIST,
    MAX_WIDTH,
)
from advisor.contract.vocabulary import TASKS


class AdvisorGroup(click.Group):
    """A click group that turns AdvisorError, and click's own usage errors, into one line
    and an exit code."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as err:  # a bad option or argument: one line, not a usage block
            where = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
            message = " ".join(err.format_message().split())
            click.echo(f"error: {message}{where}", err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:
            err.show()
            sys.exit(err.exit_code)
        except click.exceptions.Abort:  # Ctrl-C outside a run's own handling
            click.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AdvisorError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(err.exit_code)


@click.group(cls=AdvisorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="advisor")
@click.option(
    "--data-root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Refuse data files outside this folder (default: no limit).",
)
def cli(data_root: Path | None) -> None:
    """An expert system that plans deep-learning training, explains every
    choice, trains the plan (JAX/Flax/optax) and diagnoses the run.

    \b
    Example:
      advisor recommend examples/profiles/digits_mlp.json -o plan.json
      advisor run plan.json --out runs/digits
      advisor diagnose runs/digits/history.json --plan plan.json -o next_plan.json
    """
    from advisor.contract.inputs import set_data_root

    set_data_root(data_root)


def _check_output(
    path: Path | None, *inputs: Path | None, option: str = "-o", folder: bool = False
) -> None:
    """Refuse, before any work, an output that cannot be written or would overwrite an input."""
    if path is not None:
        from advisor.contract.inputs import check_output

        check_output(path, inputs=inputs, option=option, folder=folder)


def _run_files_of(run_dir: Path) -> tuple[Path, ...]:
    """The files of a run folder that evaluate/predict/export read: never an output."""
    names = ("model.safetensors", "model.json", "preprocessing.json", "plan.json")
    return tuple(run_dir / name for name in names)


def _emit_json(model_or_obj) -> None:
    if hasattr(model_or_obj, "model_dump_json"):
        click.echo(model_or_obj.model_dump_json(indent=2))
    else:
        click.echo(json.dumps(model_or_obj, indent=2, default=str))


# ----------------------------------------------------------------------------- schema


@cli.command()
@click.argument(
    "name",
    type=click.Choice(
        ["profile", "plan", "history", "diagnosis", "run", "preprocessing", "lineage"]
    ),
)
def schema(name: str) -> None:
    """Print the JSON Schema of a file format, for editors and validators.

    \b
    Example:
      advisor schema profile > profile.schema.json
    """
    from advisor.contract.schemas import SCHEMAS

    click.echo(json.dumps(SCHEMAS[name].model_json_schema(), indent=2))


# ----------------------------------------------------------------------------- rules


@cli.group(cls=AdvisorGroup)
def rules() -> None:
    """Inspect and lint the knowledge base (rules/*.toml).

    \b
    Example:
      advisor rules check
      advisor rules list --domain recommend
    """


@rules.command("check")
@click.option(
    "--rules", "rules_dirs", multiple=True, type=click.Path(), help="Extra rule files or folders."
)
@click.option("--json", "as_json", is_flag=True, help="Print the issues as JSON.")
def rules_check(rules_dirs: tuple[str, ...], as_json: bool) -> None:
    """Lint the rules and run every rule's example; exit 2 on any error.

    \b
    Example:
      advisor rules check
      advisor rules check --rules team_rules/ --json
    """
    from advisor.expert.lint import check_examples, example_builders, lint
    from advisor.expert.rules import load_rules

    loaded = load_rules(list(rules_dirs))
    issues = lint(loaded) + check_examples(loaded, example_builders())
    errors = [i for i in issues if i.level == "error"]
    if as_json:
        _emit_json([i.__dict__ for i in issues])
    else:
        for item in issues:
            click.echo(str(item))
        click.echo(
            f"{len(loaded)} rules, {len(errors)} errors, {len(issues) - len(errors)} warnings"
        )
    if errors:
        sys.exit(2)


@rules.command("list")
@click.option("--domain", type=click.Choice(["recommend", "diagnose"]), help="Only this domain.")
@click.option(
    "--rules", "rules_dirs", multiple=True, type=click.Path(), help="Extra rule files or folders."
)
@click.option("--json", "as_json", is_flag=True, help="Print the rules as JSON.")
def rules_list(domain: str | None, rules_dirs: tuple[str, ...], as_json: bool) -> None:
    """Show every rule: id, priority, when, conclusions and reason.

    \b
    Example:
      advisor rules list --domain diagnose
    """
    from advisor.cli.render import render_rules
    from advisor.expert.rules import load_rules

    loaded = [r for r in load_rules(list(rules_dirs)) if domain is None or r.domain == domain]
    if as_json:
        _emit_json(
            [
                {
                    "id": r.id,
                    "file": r.file,
                    "domain": r.domain,
                    "priority": r.priority,
                    "when": r.describe_when(),
                    "infer": r.infer,
                    "recommend": r.recommend,
                    "diagnose": r.diagnose.problem if r.diagnose else None,
                    "reason": r.reason,
                    "source": r.source,
                }
                for r in loaded
            ]
        )
    else:
        render_rules(loaded)


# ----------------------------------------------------------------------------- recommend / explain


@cli.command()
@click.argument("profile", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the plan here."
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON on stdout.")
@click.option(
    "--history",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A history to diagnose and fold in.",
)
@click.option(
    "--rules", "rules_dirs", multiple=True, type=click.Path(), help="Extra rule files or folders."
)
def recommend(
    profile: Path,
    output: Path | None,
    as_json: bool,
    history: Path | None,
    rules_dirs: tuple[str, ...],
) -> None:
    """Recommend a complete training plan for a dataset profile, every value explained.

    \b
    Example:
      advisor recommend examples/profiles/digits_mlp.json            # readable summary
      advisor recommend examples/profiles/digits_mlp.json -o plan.json
    """
    from advisor.cli.render import render_plan
    from advisor.contract.io import write_model
    from advisor.expert.recommending import recommend as recommend_plan

    _check_output(output, profile, history)
    plan = recommend_plan(profile, rules_dirs=list(rules_dirs), history=history)
    if output is not None:
        write_model(output, plan)
    if as_json:
        _emit_json(plan)
    elif output is None:
        render_plan(plan)
    else:
        click.echo(f"wrote {output} ({len(plan.explanations)} explained fields)")


@cli.command()
@click.argument("plan", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("field", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the explanations as JSON.")
def explain(plan: Path, field: str | None, as_json: bool) -> None:
    """Say why each plan value is what it is, and which rules lost.

    \b
    Example:
      advisor explain plan.json
      advisor explain plan.json freeze.strategy
    """
    from advisor.cli.render import render_explanations
    from advisor.expert.explaining import explain as explain_plan

    explanations = explain_plan(plan, field)
    if as_json:
        _emit_json({k: v.model_dump() for k, v in explanations.items()})
    else:
        render_explanations(explanations)


# ----------------------------------------------------------------------------- diagnose


@cli.command()
@click.argument("history", type=click.Path(path_type=Path))
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The plan that produced the history.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the revised plan here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the diagnosis as JSON.")
@click.option(
    "--task", type=click.Choice(TASKS), help="The task, when there is no plan (sets chance level)."
)
@click.option(
    "--classes",
    "n_classes",
    type=click.IntRange(min=2, max=MAX_WIDTH),
    help="Number of classes, when there is no plan.",
)
@click.option("--run", "run", help="Of a folder or file holding several runs, only this one.")
def diagnose(
    history: Path,
    plan_path: Path | None,
    output: Path | None,
    as_json: bool,
    task: str | None,
    n_classes: int | None,
    run: str | None,
) -> None:
    """Name what went wrong in a training history and, given the plan, fix it.

    \b
    Example:
      advisor diagnose examples/histories/keras_csvlogger_overfitting.csv --task multiclass --classes 10
      advisor diagnose examples/histories/engine_digits_overfit/history.json --plan examples/histories/engine_digits_overfit/plan.json -o next_plan.json

    A folder holding several runs (lightning_logs/version_0, version_1 ..., or several
    TensorBoard run folders) gives one diagnosis per run; --run NAME picks one.
    """
    from advisor.cli.bodies import diagnose_files

    _check_output(output, history, plan_path)
    diagnose_files(history, plan_path, output, as_json, task=task, n_classes=n_classes, run=run)


# ----------------------------------------------------------------------------- run


@cli.command()
@click.argument("plan", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory (new or empty).",
)
@click.option(
    "--resume",
    type=click.Path(file_okay=False, path_type=Path),
    help="Continue this interrupted run from its newest checkpoint (no PLAN).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the run in a non-empty --out (only its own files are removed).",
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "gpu", "tpu"]), help="Override the plan's device."
)
@click.option("--json", "as_json", is_flag=True, help="Print the run result as JSON.")
@click.option(
    "--coordinator",
    envvar="JAX_COORDINATOR_ADDRESS",
    help="Multi-host: HOST:PORT of process 0 (env JAX_COORDINATOR_ADDRESS).",
)
@click.option(
    "--num-processes",
    type=click.IntRange(min=1, max=1 << 16),
    envvar="JAX_NUM_PROCESSES",
    help="Multi-host: how many processes train together (env JAX_NUM_PROCESSES).",
)
@click.option(
    "--process-id",
    type=click.IntRange(min=0, max=(1 << 16) - 1),
    envvar="JAX_PROCESS_ID",
    help="Multi-host: this process's number, 0 first (env JAX_PROCESS_ID).",
)
@click.option(
    "--distributed",
    is_flag=True,
    help="Multi-host: let JAX find the cluster (Slurm, TPU VM, Open MPI).",
)
def run(
    plan: Path | None,
    out_dir: Path | None,
    resume: Path | None,
    overwrite: bool,
    device: str | None,
    as_json: bool,
    coordinator: str | None,
    num_processes: int | None,
    process_id: int | None,
    distributed: bool,
) -> None:
    """Train a plan on JAX/Flax and write the run directory (history, checkpoint, diagnosis).

    Each epoch appends to history.csv and TensorBoard scalars in the run
    directory; the training state is checkpointed (plan "checkpoint" section).
    Ctrl-C or SIGTERM ends the current epoch, saves, and exits 130/143.
    Every device JAX sees shares each batch (plan scale.devices picks fewer).
    Several hosts: run the same command on each with --coordinator,
    --num-processes and --process-id (README, "Several machines").

    \b
    Example:
      advisor run plan.json --out runs/digits
      advisor run --resume runs/digits
    """
    from advisor.cli.bodies import run_files

    cluster = {
        "coordinator": coordinator,
        "num_processes": num_processes,
        "process_id": process_id,
        "auto": distributed,
    }
    run_files(plan, out_dir, device, as_json, resume=resume, overwrite=overwrite, cluster=cluster)


@cli.command()
@click.argument("data")
@click.option("--target", help="CSV: the column to predict.")
@click.option(
    "--budget", help="Wall-clock budget, e.g. 20m, 90s, 1h30m (default 20m when no limit is given)."
)
@click.option(
    "--runs",
    type=click.IntRange(min=1, max=MAX_COUNT),
    help="Most trainings (a search trial counts one).",
)
@click.option(
    "--examples",
    type=click.IntRange(min=1, max=MAX_COUNT),
    help="Most examples trained, summed over epochs (n_train x epochs).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Lineage folder (default auto/NAME); round-NN/ are its run folders.",
)
@click.option(
    "--resume", is_flag=True, help="Continue the lineage in --out from its last finished round."
)
@click.option(
    "--start",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Run this plan in round 1 instead of the recommended one.",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(min=0.0, max=0.8, max_open=True),
    default=0.2,
    show_default=True,
    help="Share held out as the test split, scored once at the end (0 = none).",
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "gpu", "tpu"]), help="Override the plans' device."
)
@click.option("--quiet", is_flag=True, help="No per-epoch progress bars, only one line per round.")
@click.option("--json", "as_json", is_flag=True, help="Print the lineage as JSON at the end.")
def auto(
    data: str,
    target: str | None,
    budget: str | None,
    runs: int | None,
    examples: int | None,
    out_dir: Path | None,
    resume: bool,
    start: Path | None,
    test_fraction: float,
    device: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Design the model: recommend, run, diagnose, revise (or search), repeat under a budget.

    \b
    Example:
      advisor auto builtin:diabetes --runs 12 --out auto/diabetes
      advisor auto data.csv --target price --budget 20m --out auto/price

    Each round is a run folder; the next round fixes what the best round's diagnosis
    found or, once it has nothing left to fix, searches around it, or with too little
    budget for a search takes one step along one dimension from it, learning rate first
    (rules/auto/auto.toml narrows both by what earlier rounds found).  Stops on the
    budget, on a perfect validation score, after rounds without a new best, or on a
    plateau.  The best round by validation is scored on the test split once, at the end.
    OUT/lineage.md tells why each round changed what it did.
    """
    from advisor.cli.render import bars
    from advisor.workflows.auto_report import summary
    from advisor.workflows.designing import auto as design

    _check_output(out_dir, option="--out", folder=True)
    lineage = design(
        data,
        target,
        budget,
        runs=runs,
        examples=examples,
        out_dir=out_dir,
        resume=resume,
        start=start,
        test_fraction=test_fraction,
        device=device,
        progress=bars(quiet),
        report=lambda line: click.echo(line, err=as_json),
    )
    if as_json:
        click.echo(lineage.model_dump_json(indent=2))
    else:
        from advisor.workflows.designing import default_out

        click.echo(summary(lineage, out_dir or default_out(data)))


# ----------------------------------------------------------------------------- use a trained run


@cli.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--data", required=True, help="Labelled data: builtin:NAME, a .npz, a .csv or an image folder."
)
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation as JSON.")
def evaluate(run_dir: Path, data: str, as_json: bool) -> None:
    """Score a run's model on labelled data: the loss and every metric of its task.

    The data is read and scaled as the run read its own (preprocessing.json:
    CSV columns, image size, classes, scaling).

    \b
    Example:
      advisor evaluate runs/digits --data builtin:digits
      advisor evaluate runs/table --data new_rows.csv --json
    """
    from advisor.cli.bodies import evaluate_files

    evaluate_files(run_dir, data, as_json)


@cli.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False, path_type=Path))
@click.argument("input_", metavar="INPUT")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="predictions.csv, .npy (probabilities or values) or .json.",
)
def predict(run_dir: Path, input_: str, output: Path) -> None:
    """Predict every row (or image) of INPUT with a run's model, in INPUT's order.

    INPUT is a .npy, a .npz, a .csv (the run's feature columns), a folder of
    images or builtin:NAME.  Rows go through the model batch by batch.

    \b
    Example:
      advisor predict runs/digits builtin:digits -o predictions.csv
      advisor predict runs/shapes photos/ -o predictions.json
    """
    from advisor.cli.bodies import predict_file

    _check_output(output, Path(input_), *_run_files_of(run_dir))
    predict_file(run_dir, input_, output)


@cli.command()
@click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("model.jaxexport"),
    show_default=True,
    help="The file to write.",
)
def export(run_dir: Path, output: Path) -> None:
    """Write a run's model as serialized StableHLO (jax.export) with any batch size.

    The file holds the scaling and the weights; advisor.load_exported(path)
    (or jax.export.deserialize) runs it with jax alone.

    \b
    Example:
      advisor export runs/digits -o digits.jaxexport
    """
    from advisor.cli.bodies import export_files

    _check_output(output, *_run_files_of(run_dir))
    export_files(run_dir, output)


# ----------------------------------------------------------------------------- search / lr-find


@cli.command()
@click.argument("plan", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Search directory (default searches/<name>).",
)
@click.option(
    "--storage",
    help="Journal file or database URL that keeps the study (default OUT/study.journal).",
)
@click.option("--study-name", help="Study to create or join (default: the plan's name).")
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Worker processes on this machine sharing the study.",
)
@click.option(
    "--mode",
    type=click.Choice(["auto", "population", "sequential"]),
    default="auto",
    show_default=True,
    help="Train trials vmapped together, one after another, or time both (auto).",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 100_000),
    help="Trials asked for at once (default: a quarter of n_trials, 2 to 64).",
)
@click.option(
    "--heartbeat-timeout",
    type=click.FloatRange(2, 86_400),
    metavar="SECONDS",
    help="Seconds without a heartbeat after which a worker's running trial is failed and retried by the others (default 120).",
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "gpu", "tpu"]), help="Override the plan's device."
)
@click.option("--quiet", is_flag=True, help="No progress bar and no summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the search result as JSON.")
def search(
    plan: Path,
    out_dir: Path | None,
    storage: str | None,
    study_name: str | None,
    workers: int,
    mode: str,
    batch: int | None,
    heartbeat_timeout: float | None,
    device: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Search the plan's hyperparameters (grid, random or TPE via Optuna) and write the leaderboard and best plan.

    \b
    Example:
      advisor search examples/plans/wine_random_search.json --out searches/wine
      advisor search plan.json --out searches/s --workers 2
      advisor search plan.json --storage sqlite:///study.db --study-name s   # on each machine

    Workers share the study; a worker that dies (or is killed) leaves trials
    whose heartbeat stops, and after --heartbeat-timeout the others mark them
    failed and run them again; Ctrl-C stops a worker after its current epoch
    and hands its trials back at once.
    A restarted worker picks up what is left.
    """
    from advisor.cli.bodies import search_files
    from advisor.workflows.searching import SearchOptions

    _check_output(out_dir, option="--out", folder=True)
    options = SearchOptions(
        storage, study_name, device, mode, batch, heartbeat_timeout=heartbeat_timeout
    )
    search_files(plan, out_dir, options, workers, quiet, as_json)


@cli.command("lr-find")
@click.argument("plan", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--seeds",
    type=click.IntRange(2, 64),
    default=3,
    show_default=True,
    help="Sweeps, each from another seed.",
)
@click.option(
    "--steps",
    type=click.IntRange(1, 100_000),
    help="Training steps of each short run (default: two epochs, kept within 50-200 steps).",
)
@click.option(
    "--min-lr",
    type=click.FloatRange(min=0, min_open=True, max=MAX_LEARNING_RATE),
    help="Lowest rate tried (default plan rate / 1000).",
)
@click.option(
    "--max-lr",
    type=click.FloatRange(min=0, min_open=True, max=MAX_LEARNING_RATE),
    help="Highest rate tried (default plan rate x 100).",
)
@click.option(
    "--points",
    type=click.IntRange(3, 256),
    default=16,
    show_default=True,
    help="Rates on the log grid.",
)
@click.option(
    "--profile",
    "profile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the suggestion into this profile's lr_find field.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for lr_find.png and lr_find.json.",
)
@click.option(
    "--mode",
    type=click.Choice(["auto", "population", "sequential"]),
    default="auto",
    show_default=True,
    help="Train the rates vmapped together, one after another, or time both (auto).",
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "gpu", "tpu"]), help="Override the plan's device."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def lr_find(
    plan: Path,
    seeds: int,
    steps: int | None,
    min_lr: float | None,
    max_lr: float | None,
    points: int,
    profile: Path | None,
    out_dir: Path | None,
    mode: str,
    device: str | None,
    as_json: bool,
) -> None:
    """Learning-rate range test: short runs over a log grid of rates, vmapped, repeated over seeds.

    \b
    Example:
      advisor lr-find plan.json
      advisor lr-find plan.json --profile profile.json && advisor recommend profile.json -o plan.json
    """
    from advisor.cli.bodies import lr_find_files
    from engine.searching.lr_find import SweepOptions

    _check_output(out_dir, option="--out", folder=True)
    _check_output(profile, option="--profile")
    options = SweepOptions(seeds, steps, min_lr, max_lr, points, mode=mode, device=device)
    lr_find_files(plan, options, profile, out_dir, as_json)


# ----------------------------------------------------------------------------- transfer: profile, bases


def _int_list(ctx, param, value: str | None) -> list[int] | None:
    if value is None:
        return None
    parts = [v.strip() for v in value.split(",") if v.strip()]
    if len(parts) > MAX_LIST or not all(p.isascii() and p.isdigit() and len(p) <= 7 for p in parts):
        raise InputError(
            f"--{param.name}: {value[:40]!r} is not a comma-separated list of class ids, e.g. 5,6,7"
        )
    return [int(v) for v in parts]


def _image_size(ctx, param, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    parts = value.lower().split("x")
    numbers = all(p.isascii() and p.isdigit() and len(p) <= 6 and int(p) > 0 for p in parts)
    if len(parts) != 2 or not numbers:
        raise InputError(f"--image-size: {value[:40]!r} is not HEIGHTxWIDTH, e.g. 64x64")
    height, width = int(parts[0]), int(parts[1])
    if max(height, width) > MAX_IMAGE_SIDE:
        raise InputError(
            f"--image-size: {value!r} is too large; expected at most {MAX_IMAGE_SIDE} per side"
        )
    return height, width


@cli.command()
@click.argument("data")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the profile here.",
)
@click.option(
    "--base",
    help="A pretrained base (run directory, .pth/.safetensors, torchvision:NAME): measure similarity to it.",
)
@click.option("--target", help="CSV: the column to predict.")
@click.option(
    "--task",
    type=click.Choice(["regression", "binary", "multiclass", "multilabel", "detection"]),
    help="The task (default: inferred from the targets).",
)
@click.option(
    "--classes", callback=_int_list, help="builtin: keep these class ids, e.g. 5,6,7,8,9."
)
@click.option(
    "--subsample",
    type=click.IntRange(min=1, max=MAX_COUNT),
    help="builtin: keep this many training examples.",
)
@click.option(
    "--n-samples",
    type=click.IntRange(min=1, max=10**7),
    help="builtin shapes: examples to generate.",
)
@click.option(
    "--image-size",
    callback=_image_size,
    help="Resize images to HEIGHTxWIDTH, e.g. 8x8 (required for image folders).",
)
@click.option(
    "--color-mode",
    type=click.Choice(["rgb", "grayscale"]),
    default="rgb",
    show_default=True,
    help="Image folders: channels.",
)
@click.option("--name", help="The profile's short name.")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON.")
def profile(data: str, output: Path | None, as_json: bool, **options) -> None:
    """Write a dataset profile from the data itself; with --base, measure its similarity to the base.

    DATA is builtin:NAME (digits, iris, wine, breast_cancer, diabetes, shapes),
    a .npz file (arrays x and y), a .csv file (with --target) or an image folder.

    \b
    Example:
      advisor profile builtin:digits --classes 5,6,7,8,9 --subsample 100 --base runs/bases/digits_0to4 -o profile.json
      advisor recommend profile.json -o plan.json
    """
    from advisor.cli.bodies import profile_files

    _check_output(output, Path(data))
    profile_files(data, output, as_json, **options)


@cli.command()
@click.argument("plans", nargs=-1, type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Retrain bases that are already built.")
@click.option("--json", "as_json", is_flag=True, help="Print what was built as JSON.")
def pretrain(plans: tuple[Path, ...], force: bool, as_json: bool) -> None:
    """Build pretrained bases: run each base plan into its output_dir, unless it is built already.

    PLANS are plan files or folders of them (default: examples/bases).

    \b
    Example:
      advisor pretrain                # every base the transfer examples use
      advisor run examples/plans/transfer_small_similar.json
    """
    from advisor.cli.bodies import pretrain_files

    pretrain_files(list(plans), force, as_json)


@cli.command("import-base")
@click.argument("source")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Checkpoint directory to write.",
)
def import_base(source: str, output: Path) -> None:
    """Convert torchvision/timm ResNet weights into a checkpoint usable as model.base.

    SOURCE is a state dict (.pth, .pt, .bin, .safetensors) or a hub name,
    torchvision:resnet18 or timm:resnet50.a1_in1k (downloaded once).

    \b
    Example:
      advisor import-base resnet18-f37072fd.pth -o runs/bases/resnet18
    """
    from advisor.cli.bodies import import_base_files

    _check_output(output, option="-o", folder=True)
    import_base_files(source, output)


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="advisor")
    except InputError as err:  # raised outside a command (should not happen)
        click.echo(f"error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
