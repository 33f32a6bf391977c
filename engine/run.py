"""Plan -> run directory: the engine's entry point (``advisor run`` calls it).

``run_plan`` checks the plan, picks the device, loads the data, builds the
model (taking the base from a checkpoint when ``model.base`` names one),
trains through ``engine.fit`` and writes the run directory:

    plan.json        the plan as run (output_dir and device resolved)
    history.json     the History (format "native"), readable by ``advisor diagnose``
    metrics.json     validation (and train) values of the final or restored best epoch, and
                     under "test" the final model's score on the held-out test split
    preprocessing.json  how raw inputs become model inputs (scaling, classes, columns,
                     image size): what ``advisor evaluate``/``predict`` apply to new data
    model.safetensors + model.json   the weights, no pickle
    curves.png       learning curves
    diagnosis.json, next_plan.json   advisor.diagnosis.revise_plan(history, plan)

Nothing is written before training ends; each file is written atomically.  A
loss that turns NaN still writes the history so far, the last good weights
and the diagnosis, then raises ``EngineError`` saying where they are.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp

from advisor.errors import EngineError, InputError
from advisor.io import write_atomic, write_model
from advisor.loading import resolve_plan_paths
from advisor.schemas import History, HistorySource, Plan, RunResult, ScalePlan
from engine.checkpoint import save_checkpoint, transfer_base
from engine.checks import CheckWarning, check_data, check_plan
from engine.curves import plot_curves
from engine.data import load_data
from engine.device import describe_device, select_device
from engine.fit import Diverged, FitResult, fit
from engine.models import build_model, init_variables
from engine.predict import PREPROCESSING, Predictor, preprocessing_for
from engine.transfer import load_base


def _compute_dtype(plan: Plan, device: jax.Device, warnings: list[CheckWarning]):
    if plan.precision != "bfloat16":
        return jnp.float32
    if device.platform == "cpu":
        warnings.append(
            CheckWarning(
                "precision",
                "bfloat16 runs slower than float32 on a CPU (no bf16 matrix units in XLA:CPU)",
                "training in float32; bfloat16 applies on GPU/TPU",
            )
        )
        return jnp.float32
    return jnp.bfloat16  # parameters and optimizer state stay float32


def initial_variables(
    plan: Plan, network, base_dir: Path, warnings: list[CheckWarning]
) -> tuple[dict, dict | None]:
    """Fresh variables, with the base taken from ``model.base`` when the strategy reuses one."""
    key = jax.random.fold_in(jax.random.PRNGKey(plan.seed), 0)
    variables = init_variables(network, key, plan.input_shape)
    strategy = plan.freeze.strategy
    if plan.model.base is None:
        if strategy != "from_scratch":
            raise InputError(
                f"model.base: strategy {strategy!r} reuses a pretrained base, "
                "but the plan names none; "
                "set model.base to an earlier run directory, or use strategy from_scratch"
            )
        return variables, None
    if strategy == "from_scratch":
        warnings.append(
            CheckWarning(
                "model.base",
                "from_scratch ignores the pretrained base",
                "drop model.base or pick a transfer strategy",
            )
        )
        return variables, None
    checkpoint, structure, source = load_base(plan, base_dir)
    return transfer_base(variables, checkpoint, source), structure


def run_plan(
    plan: Plan,
    out_dir: str | Path | None = None,
    device: str | None = None,
    base_dir: str | Path = ".",
    report: Callable[[str], None] = print,
    progress: bool | None = None,
) -> RunResult:
    """Train ``plan`` and write its run directory; returns what was written.

    Args:
        out_dir: the run directory (default: plan.output_dir, else runs/<name>-<time>).
        device: auto, cpu, gpu or tpu; None = the plan's.
        base_dir: folder that relative data paths and model.base are relative to.
        report: receives each pre-flight warning as one line.
        progress: show the progress bar (None = only when stdout is a terminal).

    Raises:
        InputError: the plan or its data cannot give a correct run (nothing written).
        EngineError: no such device, or the loss diverged (history and last good weights written).
    """
    base_dir = Path(base_dir)
    plan = resolve_plan_paths(plan, base_dir)  # the run folder's plan.json runs from anywhere
    warnings = check_plan(plan)
    chosen = select_device(device or plan.device)
    from engine.streaming import load_streamed, wants_stream

    streamed = wants_stream(plan, base_dir)  # data above plan.scale's threshold: read from disk
    dataset = load_streamed(plan, base_dir) if streamed else load_data(plan, base_dir)
    warnings += check_data(plan, dataset)
    dtype = _compute_dtype(plan, chosen, warnings)
    impl = "cpu" if chosen.platform == "cpu" else "xla"
    if plan.task == "gan":
        from engine.gan import build_gan

        phases, state, network, variables_of = build_gan(
            plan, dataset, chosen, impl=impl, dtype=dtype
        )
        base_structure = None
    else:
        from engine.supervised import build_supervised

        network = build_model(plan.model, plan.input_shape, plan.task, impl=impl, dtype=dtype)
        variables, base_structure = initial_variables(plan, network, base_dir, warnings)
        if plan.freeze.strategy == "feature_extractor":
            from engine.features import build_feature_extractor

            phases, state, variables_of = build_feature_extractor(
                plan, network, dataset, chosen, variables
            )
        else:
            from engine.sharding import placement_for

            placement = placement_for((plan.scale or ScalePlan()).devices, chosen)
            if streamed:
                from engine.streaming import build_streamed

                phases, state = build_streamed(
                    plan, network, dataset, chosen, variables, placement
                )
            else:
                phases, state = build_supervised(
                    plan, network, dataset, chosen, variables, placement=placement
                )
            variables_of = lambda s: placement.local(s.variables())  # noqa: E731
    for warning in warnings:
        report(str(warning))

    run_dir = Path(out_dir or plan.output_dir or _default_dir(plan))
    resolved = plan.model_copy(update={"output_dir": str(run_dir), "device": chosen.platform})
    if plan.task != "gan" and plan.freeze.strategy != "feature_extractor":
        scale = (plan.scale or ScalePlan()).model_copy(
            update={"devices": placement.n_devices, "data_path": "stream" if streamed else "memory"}
        )
        resolved = resolved.model_copy(update={"scale": scale})  # the device count as run
    try:
        result = fit(phases, state, plan, progress=progress)
        diverged = None
    except Diverged as err:
        result, diverged = err.result, err
    from engine.baselines import fit_baselines

    baselines = fit_baselines(plan, dataset) if diverged is None else {}
    return _write_run(
        run_dir,
        resolved,
        result,
        variables_of,
        chosen,
        dataset,
        base_structure,
        diverged,
        baselines,
    )


def _default_dir(plan: Plan) -> Path:
    return Path("runs") / f"{plan.name or plan.task}-{time.strftime('%Y%m%d-%H%M%S')}"


def _final_metrics(result: FitResult) -> dict[str, float]:
    epoch = result.best_epoch or (result.epochs[-1] if result.epochs else None)
    if epoch is None:
        return {}
    values = result.at(epoch)
    return {
        k: v
        for k, v in values.items()
        if k.startswith("val_") and v is not None and math.isfinite(v)
    }


def _write_run(
    run_dir,
    plan: Plan,
    result: FitResult,
    variables_of,
    device: jax.Device,
    dataset,
    base_structure,
    diverged,
    baselines: dict | None = None,
) -> RunResult:
    run_dir.mkdir(parents=True, exist_ok=True)
    history = History(
        source=HistorySource(format="native", path=str(run_dir / "history.json")),
        epochs=result.epochs,
        series=result.series,
        task=plan.task,
        n_classes=plan.n_classes,
    )
    write_model(run_dir / "plan.json", plan)
    write_model(run_dir / "history.json", history)
    epoch = result.best_epoch or (result.epochs[-1] if result.epochs else None)
    metrics = _final_metrics(result)
    preprocessing = None
    if plan.task != "gan":
        preprocessing = preprocessing_for(
            plan, dataset.scaling, dataset.class_names, dataset.feature_names, dataset.categories
        )
        write_model(run_dir / PREPROCESSING, preprocessing)
    test_metrics = {}
    if preprocessing is not None and dataset.x_test is not None and result.state is not None:
        # once, at the end, on the final model: nothing above saw these rows
        variables = jax.device_get(variables_of(result.state))
        predictor = Predictor(plan, variables, preprocessing, device=device)
        test_metrics = predictor.evaluate_prepared(dataset.x_test, dataset.y_test)
    summary = {
        "epoch": epoch,
        "best_epoch": result.best_epoch,
        **({k: v for k, v in result.at(epoch).items() if v is not None} if epoch else {}),
        **({"test": test_metrics} if test_metrics else {}),
    }
    write_atomic(run_dir / "metrics.json", json.dumps(summary, indent=2) + "\n")
    checkpoint = None
    if result.state is not None:
        meta = {
            "task": plan.task,
            "input_shape": list(plan.input_shape),
            "n_classes": plan.n_classes,
            "model": plan.model.model_dump(),
            "epoch": diverged.last_good_epoch if diverged else epoch,
            "scaling": dataset.scaling,
            "class_names": dataset.class_names,
            "base_from": base_structure.get("model") if base_structure else None,
        }
        checkpoint = str(save_checkpoint(run_dir, jax.device_get(variables_of(result.state)), meta))
    curves = str(
        plot_curves(
            run_dir / "curves.png",
            result.epochs,
            result.series,
            plan.metrics,
            plan.name or plan.task,
        )
    )
    diagnosis_path, next_plan_path = _diagnose(run_dir, history, plan)
    run = RunResult(
        run_dir=str(run_dir),
        plan=str(run_dir / "plan.json"),
        history=str(run_dir / "history.json"),
        metrics=metrics,
        checkpoint=checkpoint,
        curves=curves,
        diagnosis=diagnosis_path,
        next_plan=next_plan_path,
        best_epoch=result.best_epoch,
        stopped_early=result.stopped_early,
        stopped_reason=result.stopped_reason,
        device=describe_device(device),
        baselines=baselines or {},
        test_metrics=test_metrics,
    )
    write_model(run_dir / "run.json", run)
    if diverged is not None:
        last = (
            f"the last good weights (epoch {diverged.last_good_epoch})"
            if diverged.last_good_epoch
            else "no weights"
        )
        raise EngineError(
            f"training diverged: {diverged}; the history so far and {last} are in {run_dir}; "
            "lower optimizer.learning_rate or set optimizer.clip_norm"
            + (f" (see {next_plan_path})" if next_plan_path else "")
        )
    return run


def _diagnose(run_dir: Path, history: History, plan: Plan) -> tuple[str | None, str | None]:
    """diagnosis.json and next_plan.json from advisor.diagnosis, when that module is installed."""
    try:
        from advisor.diagnosis import revise_plan
    except (
        ModuleNotFoundError
    ) as err:  # the diagnosis module is optional; its own bugs are not hidden
        if err.name != "advisor.diagnosis":
            raise
        return None, None
    diagnosis, next_plan = revise_plan(history, plan)
    write_model(run_dir / "diagnosis.json", diagnosis)
    write_model(run_dir / "next_plan.json", next_plan)
    return str(run_dir / "diagnosis.json"), str(run_dir / "next_plan.json")
