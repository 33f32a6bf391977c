"""Training-state checkpoints with orbax: what ``advisor run --resume`` continues from.

A checkpoint is ``RUN_DIR/checkpoints/<epoch>/`` written by an orbax
``CheckpointManager``: ``state`` holds the whole training state pytree
(parameters, batch statistics, optimizer state with its learning-rate scale,
step, RNG key) and, under early stopping, the best epoch's weights; ``meta``
(JSON) holds the epoch, the phase and the epochs done in it, the early-stopping
and plateau counters and the history so far.  The data order needs nothing
more: each epoch's order is a pure function of the plan's seed and the epoch
number (``engine.datasets.data.epoch_batches``).  Orbax writes a step into a temporary
folder and renames it when complete, so only complete checkpoints are ever
visible; the newest ``keep_last`` and, with ``keep_best``, the best one are kept.
The final model (``engine.outputs.checkpoint``) is a different file: the
final weights as safetensors.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advisor.contract.errors import InputError
from advisor.contract.schemas import CheckpointPlan, Plan
from engine.training.callbacks import EpochState
from engine.training.fit import FitResult, Resumed

CHECKPOINTS = "checkpoints"
FORMAT = "advisor-train-state-1"


def checkpoint_settings(plan: Plan) -> CheckpointPlan:
    """The plan's checkpoint section, or the defaults."""
    return plan.checkpoint or CheckpointPlan()


def _monitor(plan: Plan) -> tuple[str, str]:
    spec = plan.regularization.early_stopping
    return (spec.monitor, spec.mode) if spec else ("val_loss", "min")


def _manager(run_dir: Path, plan: Plan, read_only: bool = False):
    import orbax.checkpoint as ocp
    from orbax.checkpoint import checkpoint_managers as policies

    settings = checkpoint_settings(plan)
    keep: list = [policies.LatestN(settings.keep_last)]
    if settings.keep_best:
        # BestN keeps the end of the ascending order; "signed" is lower-is-better
        keep.append(
            policies.BestN(
                get_metric_fn=lambda metrics: metrics["signed"],
                reverse=True,
                n=1,
                keep_checkpoints_without_metrics=False,
            )
        )
    options = ocp.CheckpointManagerOptions(
        enable_async_checkpointing=False,  # the epoch waits for the write: nothing half-done
        preservation_policy=policies.AnyPreservationPolicy(keep),
        create=not read_only,
        read_only=read_only,
        cleanup_tmp_directories=not read_only,  # what a killed save left is not a checkpoint
    )
    return ocp.CheckpointManager((run_dir / CHECKPOINTS).absolute(), options=options)


class CheckpointCallback:
    """Saves the training state after an epoch once the interval has passed, or a signal came."""

    def __init__(self, run_dir: Path, plan: Plan, interrupted: Callable[[], str | None] = None):
        self.run_dir, self.plan = Path(run_dir), plan
        self.settings = checkpoint_settings(plan)
        self.interrupted = interrupted or (lambda: None)
        self.monitor, self.mode = _monitor(plan)
        self.manager = None
        self.last_save = time.monotonic()
        self.saved: list[int] = []
        self.seconds: list[float] = []  # time each save took (benchmarks)

    def on_epoch_end(self, state: EpochState, logs: dict) -> bool:
        due = time.monotonic() - self.last_save >= self.settings.interval_seconds
        if due or self.interrupted():
            self.save(state, logs)
        return False

    def save(self, view: EpochState, logs: dict) -> None:
        import orbax.checkpoint as ocp

        started = time.perf_counter()
        if self.manager is None:
            self.manager = _manager(self.run_dir, self.plan)
        fit_state = view.fit_state or {}
        best = fit_state.get("best_snapshot")
        tree = {"state": view.state, **({"best": best} if best is not None else {})}
        result: FitResult = view.result
        meta = {
            "format": FORMAT,
            "epoch": view.epoch,
            "phase": view.phase,
            "phase_epoch": view.phase_epoch,
            "phase_done": bool(fit_state.get("phase_done")),
            "has_best": best is not None,
            "stopper": fit_state.get("stopper"),
            "plateau": fit_state.get("plateau"),
            "history": {
                "epochs": result.epochs,
                "series": result.series,
                "best_epoch": result.best_epoch,
                "stopped_early": result.stopped_early,
                "stopped_reason": result.stopped_reason,
            },
        }
        value = logs.get(self.monitor)
        metrics = None
        if value is not None and math.isfinite(value):
            metrics = {"signed": float(value if self.mode == "min" else -value)}
        self.manager.save(
            view.epoch,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)
            ),
            metrics=metrics,
            force=True,
        )
        self.manager.wait_until_finished()
        self.last_save = time.monotonic()
        self.saved.append(view.epoch)
        self.seconds.append(time.perf_counter() - started)

    def close(self) -> None:
        if self.manager is not None:
            self.manager.close()


def latest_epoch(run_dir: Path) -> int | None:
    """The epoch of the newest complete checkpoint in ``run_dir``, or None."""
    folder = Path(run_dir) / CHECKPOINTS
    if not folder.is_dir():
        return None
    steps = [int(p.name) for p in folder.iterdir() if p.name.isdigit() and _complete(p)]
    return max(steps) if steps else None


def _complete(step_dir: Path) -> bool:
    return (step_dir / "_CHECKPOINT_METADATA").exists()


def load_resume(run_dir: Path, plan: Plan) -> Resumed | None:
    """What ``engine.training.fit`` needs to continue after the newest complete checkpoint; None if none.

    Raises:
        InputError: the checkpoint is not one this version wrote.
    """
    import jax
    import orbax.checkpoint as ocp

    run_dir = Path(run_dir)
    if latest_epoch(run_dir) is None:
        return None
    manager = _manager(run_dir, plan)
    step = manager.latest_step()
    if step is None:
        return None
    where = run_dir / CHECKPOINTS / str(step)
    meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise InputError(
            f"{where}: meta.format: {found!r} is not a training-state checkpoint of this version; "
            f"expected {FORMAT!r} (start the run again with --overwrite)"
        )
    history = meta["history"]
    result = FitResult(
        epochs=[int(e) for e in history["epochs"]],
        series={k: list(v) for k, v in history["series"].items()},
        best_epoch=history["best_epoch"],
        stopped_early=bool(history["stopped_early"]),
        stopped_reason=history["stopped_reason"],
    )

    def load(template: Any, snapshot_template: Any) -> tuple[Any, Any]:
        tree = {"state": template}
        if meta["has_best"]:
            tree["best"] = snapshot_template
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)
        try:
            restored = manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
            )["state"]
        except (ValueError, KeyError) as err:
            raise InputError(
                f"{where}: state: the checkpoint does not fit this plan's model and optimizer "
                f"({type(err).__name__}); resume with the run folder's own plan.json"
            ) from None
        manager.close()
        return restored["state"], restored.get("best")

    return Resumed(
        epoch=int(meta["epoch"]),
        phase=int(meta["phase"]),
        phase_epoch=int(meta["phase_epoch"]),
        phase_done=bool(meta["phase_done"]),
        result=result,
        load=load,
        stopper=meta["stopper"],
        plateau=meta["plateau"],
    )
