"""Plan -> run directory: the engine's entry point (``advisor run`` calls it).

``run_plan(plan, RunOptions(...))`` checks the plan, picks the device, loads
the data, builds the ``engine.training.fit.Trainer`` of the plan's path
(``build_trainer``: supervised in memory or streamed, feature cache, GAN; the
base from a checkpoint when ``model.base`` names one), trains it through
``engine.training.fit`` and writes the run directory:

    plan.json        the plan as run (output_dir and device resolved)
    history.json     the History (format "native"), readable by ``advisor diagnose``
    metrics.json     validation (and train) values of the final or restored best epoch, and
                     under "test" the final model's score on the held-out test split
    preprocessing.json  how raw inputs become model inputs (scaling, classes, columns,
                     image size): what ``advisor evaluate``/``predict`` apply to new data
    model.safetensors + model.json   the weights, no pickle
    curves.png       learning curves
    samples_*.png    a GAN's sample grids (every few epochs and final)
    diagnosis.json, next_plan.json   written by the ``diagnose`` hook (advisor.workflows.running passes one)

    history.csv, events.out.tfevents.*   live logs, one row / scalars per epoch
    checkpoints/<epoch>/   the training state (engine.training.resume), for --resume

The folder is checked before any work (``engine.outputs.run_folder``); plan.json is
written when training starts, the live logs and checkpoints after each epoch
(callbacks, ``engine.training.callbacks``), the rest when training ends, each file
atomically.  A loss that turns NaN still writes the history so far, the last
good weights (the initial ones if the first epoch diverged) and the
diagnosis, then raises ``EngineError`` saying where they are.  SIGINT/SIGTERM
end the current epoch, save a checkpoint and history.json and raise
``engine.training.fit.Interrupted`` naming the command that resumes the run.  JAX's
persistent compilation cache is on (``engine.runtime.compile_cache``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import jax
import jax.numpy as jnp

from advisor.contract.errors import EngineError, InputError
from advisor.contract.io import load_model, write_atomic, write_model
from advisor.contract.loading import resolve_plan_paths
from advisor.contract.schemas import History, HistorySource, Plan, RunResult, ScalePlan
from engine.datasets.checks import CheckWarning, check_data, check_plan
from engine.datasets.data import load_data
from engine.nn.models import build_model, init_variables
from engine.outputs.checkpoint import save_checkpoint, transfer_base
from engine.outputs.curves import plot_curves
from engine.outputs.live_log import LiveLogCallback
from engine.outputs.progress import BarFactory, bar_factory
from engine.outputs.run_folder import check_run_dir, start_run_dir
from engine.pretrained.transfer import load_base
from engine.runtime.compile_cache import CompileClock, enable_compile_cache
from engine.runtime.device import describe_device, select_device
from engine.runtime.signals import SignalGuard
from engine.serving.predict import PREPROCESSING, Predictor, preprocessing_for
from engine.training.fit import Diverged, FitResult, Interrupted, Trainer, fit
from engine.training.resume import CheckpointCallback, load_resume

# (run folder, history, plan) -> paths of diagnosis.json and next_plan.json
Diagnose = Callable[[Path, History, Plan], tuple[str | None, str | None]]


def compute_dtype(plan: Plan, device: jax.Device, warnings: list[CheckWarning]):
    """The dtype a run computes in: bfloat16 where the plan asks and the device is not a CPU."""
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


@dataclass(frozen=True)
class RunOptions:
    """How ``run_plan`` runs a plan (the plan says what is trained), as one value.

    Built once by the caller (``advisor.run``, a search's best trial, ``advisor
    auto``'s rounds) and handed down whole.
    """

    out_dir: str | Path | None = None  # default: plan.output_dir, else runs/<name>-<time>
    device: str | None = None  # auto, cpu, gpu or tpu; None = the plan's
    base_dir: str | Path = "."  # folder relative data paths and model.base are relative to
    # receives each pre-flight warning, and outside a terminal each epoch, as one line
    report: Callable[[str], None] = print
    # the progress bar: True/False, None = only when stdout is a terminal, or the bar factory
    # to draw it with (engine.outputs.progress; the CLI passes rich's)
    progress: bool | None | BarFactory = None
    # on_epoch_end(state, logs) -> stop? after each epoch (engine.training.callbacks)
    callbacks: tuple = ()
    resume: bool = False  # continue the run in out_dir from its newest complete checkpoint
    overwrite: bool = False  # a non-empty out_dir is allowed; its run files are removed first
    # writes diagnosis.json and next_plan.json and returns their paths (advisor's job, not the engine's)
    diagnose: Diagnose | None = None
    # score the final model on the test split (advisor auto scores only its chosen round)
    score_test: bool = True

    def __post_init__(self):
        object.__setattr__(self, "callbacks", tuple(self.callbacks))


def build_trainer(
    plan: Plan,
    dataset,
    device: jax.Device,
    base_dir: Path,
    warnings: list[CheckWarning],
    dtype=jnp.float32,
    streamed: bool = False,
) -> Trainer:
    """The one choice of training path: GAN, feature cache, streamed or in-memory supervised.

    Each builder returns a ``Trainer`` whose state ``TrainState.start`` made;
    supervised paths take their initial variables (and ``model.base``) from
    ``initial_variables``, and shard over ``plan.scale.devices``.
    """
    impl = "cpu" if device.platform == "cpu" else "xla"
    if plan.task == "gan":
        from engine.training.gan import build_gan

        return build_gan(plan, dataset, device, impl=impl, dtype=dtype)
    network = build_model(plan.model, plan.input_shape, plan.task, impl=impl, dtype=dtype)
    variables, base_structure = initial_variables(plan, network, base_dir, warnings)
    if plan.freeze.strategy == "feature_extractor":
        from engine.pretrained.features import build_feature_extractor

        trainer = build_feature_extractor(plan, network, dataset, device, variables)
    else:
        from engine.runtime.sharding import placement_for

        placement = placement_for((plan.scale or ScalePlan()).devices, device)
        if streamed:
            from engine.training.streaming import build_streamed

            trainer = build_streamed(plan, network, dataset, device, variables, placement)
        else:
            from engine.training.supervised import build_supervised

            trainer = build_supervised(
                plan, network, dataset, device, variables, placement=placement
            )
    return replace(trainer, base_from=base_structure)


def run_plan(plan: Plan, options: RunOptions | None = None) -> RunResult:
    """Train ``plan`` and write its run directory; returns what was written.

    ``options`` (``RunOptions``, default all defaults): the folder, device,
    progress, callbacks, resume, overwrite, the diagnose hook and test scoring.

    Raises:
        InputError: the plan, its data or the run folder cannot give a correct run
            (nothing written).
        EngineError: no such device, or the loss diverged (history and last good weights
            written); ``engine.training.fit.Interrupted`` after SIGINT/SIGTERM (checkpoint written).
    """
    from engine.runtime.address_space import limit_malloc
    from engine.training.callbacks import as_callback

    limit_malloc()  # under `ulimit -v`, before jax's threads make their arenas
    options = options or RunOptions()
    report, resume = options.report, options.resume
    base_dir = Path(options.base_dir)
    plan = resolve_plan_paths(plan, base_dir)  # the run folder's plan.json runs from anywhere
    run_dir = Path(options.out_dir or plan.output_dir or _default_dir(plan))
    check_run_dir(run_dir, resume=resume, overwrite=options.overwrite)  # before any work
    callbacks = [as_callback(c) for c in options.callbacks]
    enable_compile_cache()
    with SignalGuard() as guard:
        warnings = check_plan(plan)
        chosen = select_device(options.device or plan.device)
        from engine.training.streaming import load_streamed, wants_stream

        streamed = wants_stream(plan, base_dir)  # data above plan.scale's threshold: from disk
        dataset = load_streamed(plan, base_dir) if streamed else load_data(plan, base_dir)
        warnings += check_data(plan, dataset)
        dtype = compute_dtype(plan, chosen, warnings)
        trainer = build_trainer(plan, dataset, chosen, base_dir, warnings, dtype, streamed)
        for warning in warnings:
            report(str(warning))

        resolved = plan.model_copy(update={"output_dir": str(run_dir), "device": chosen.platform})
        if trainer.placement is not None:  # the device count and data path as run
            scale = (plan.scale or ScalePlan()).model_copy(
                update={
                    "devices": trainer.placement.n_devices,
                    "data_path": "stream" if streamed else "memory",
                }
            )
            resolved = resolved.model_copy(update={"scale": scale})
        resumed = load_resume(run_dir, plan) if resume else None
        if resume:
            report(
                f"resuming {run_dir} after epoch {resumed.epoch} (its newest complete checkpoint)"
                if resumed
                else f"resuming {run_dir}: no complete checkpoint yet; training starts at epoch 1"
            )
        start_run_dir(run_dir, overwrite=options.overwrite)
        write_model(run_dir / "plan.json", resolved)  # first: what --resume runs again
        show_bar = bar_factory(options.progress)
        samples = trainer.n_train
        live = LiveLogCallback(
            run_dir,
            sum(p.epochs for p in trainer.phases),
            plan.metrics,
            samples,
            report=None if show_bar else report,
            resumed=resumed.result if resumed else None,
        )
        saver = CheckpointCallback(run_dir, plan, guard.pending)
        clock, started = CompileClock(), time.perf_counter()
        try:
            if guard.pending():  # a signal before training started: nothing to save yet
                raise Interrupted(guard.pending(), FitResult(), 0)
            result = fit(
                trainer,
                plan,
                progress=show_bar,
                callbacks=[live, *callbacks, saver],
                resume=resumed,
                interrupted=guard.pending,
            )
            diverged = None
        except Diverged as err:
            result, diverged = err.result, err
        except Interrupted as err:
            _write_history(run_dir, resolved, err.result)
            where = f"checkpoint of epoch {saver.saved[-1]}" if saver.saved else "no checkpoint"
            raise Interrupted(
                err.signal_name,
                err.result,
                err.epoch,
                detail=f"{where} and history.json in {run_dir}; "
                f"continue with: advisor run --resume {run_dir}",
            ) from None
        finally:
            live.close()
            saver.close()
        timing = _timing(result, time.perf_counter() - started, clock.seconds, samples)
    from engine.training.baselines import fit_baselines

    baselines = fit_baselines(plan, dataset) if diverged is None else {}
    return _write_run(
        run_dir,
        resolved,
        result,
        trainer,
        chosen,
        dataset,
        diverged,
        baselines,
        diagnose=options.diagnose,
        extra={"timing": timing, "resumed_from_epoch": resumed.epoch if resumed else None},
        score_test=options.score_test,
    )


def _timing(result: FitResult, elapsed: float, compile_s: float, samples: int | None) -> dict:
    """Wall time of training, compile time within it, and examples per second of epoch time."""
    out = {"elapsed_s": round(elapsed, 3), "compile_s": round(compile_s, 3)}
    seconds = [t for t in result.series.get("epoch_time", []) if t]
    if samples and seconds:
        out["samples_per_s"] = round(samples * len(seconds) / sum(seconds), 1)
    return out


def _history(run_dir: Path, plan: Plan, result: FitResult) -> History:
    return History(
        source=HistorySource(format="native", path=str(run_dir / "history.json")),
        epochs=result.epochs,
        series=result.series,
        task=plan.task,
        n_classes=plan.n_classes,
    )


def _write_history(run_dir: Path, plan: Plan, result: FitResult) -> None:
    write_model(run_dir / "history.json", _history(run_dir, plan, result))


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
    trainer: Trainer,
    device: jax.Device,
    dataset,
    diverged,
    baselines: dict | None = None,
    diagnose: Diagnose | None = None,
    extra: dict | None = None,
    score_test: bool = True,
) -> RunResult:
    run_dir.mkdir(parents=True, exist_ok=True)
    # a GAN's sample grids
    samples = trainer.write_samples(run_dir, result.state) if trainer.write_samples else []
    variables_of, base_structure = trainer.variables_of, trainer.base_from
    history = _history(run_dir, plan, result)
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
    if (
        score_test
        and preprocessing is not None
        and dataset.x_test is not None
        and result.state is not None
    ):
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
    diagnosis_path, next_plan_path = diagnose(run_dir, history, plan) if diagnose else (None, None)
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
        **(extra or {}),
        samples=samples,
    )
    write_model(run_dir / "run.json", run)
    if diverged is not None:
        last = (
            f"the last good weights (epoch {diverged.last_good_epoch})"
            if diverged.last_good_epoch
            else "the initial weights (no epoch ended with a finite loss)"
        )
        raise EngineError(
            f"training diverged: {diverged}; the history so far and {last} are in {run_dir}; "
            "lower optimizer.learning_rate or set optimizer.clip_norm"
            + (f" (see {next_plan_path})" if next_plan_path else "")
        )
    return run


def score_test_split(run_dir: str | Path, base_dir: str | Path = ".") -> dict[str, float]:
    """A finished run's model on its plan's test split (empty without one).

    The split is drawn as the run drew it (``load_data``), so the rows are the
    ones no round trained, stopped early or was selected on.
    """
    from engine.serving.predict import load_run

    plan = load_model(Plan, Path(run_dir) / "plan.json")
    if plan.data.test is None and plan.data.test_fraction == 0:
        return {}
    predictor = load_run(run_dir)
    dataset = load_data(predictor.plan, base_dir)
    if dataset.x_test is None:
        return {}
    return predictor.evaluate_prepared(dataset.x_test, dataset.y_test)
