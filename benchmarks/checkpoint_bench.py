"""Checkpoint overhead per epoch and the compile-cache start-up saving (benchmarks/RESULTS.md).

Part 1 trains bundled example plans for a few epochs with a training-state
checkpoint after every epoch (``engine.training.resume.CheckpointCallback``, interval 0)
and compares the median save time with the median epoch time (epochs after the
first, which compiles); at the default interval the save happens at most once
per ``interval_seconds``, so its share of an epoch is save / max(interval, epoch).
Part 2 runs ``advisor run`` on one plan three times in fresh processes: cache
off, cache cold (empty folder), cache warm (the same folder again).

    python benchmarks/checkpoint_bench.py [--epochs 4] [--plans digits_mlp,...] [--skip-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLANS = (
    "iris_tiny",
    "breast_cancer_binary",
    "diabetes_regression",
    "digits_mlp",
    "digits_sequence",
    "shapes_detection",
    "transfer_large_different",
)


def checkpoint_overhead(name: str, epochs: int, out: Path) -> dict:
    import jax

    from advisor.contract.loading import load_plan, resolve_plan_paths
    from advisor.contract.schemas import CheckpointPlan
    from engine.datasets.data import load_data
    from engine.nn.models import build_model
    from engine.run import initial_variables
    from engine.training.fit import fit
    from engine.training.resume import CheckpointCallback
    from engine.training.supervised import build_supervised

    path = ROOT / "examples" / "plans" / f"{name}.json"
    plan = resolve_plan_paths(load_plan(path), path.parent)
    plan = plan.model_copy(
        update={"epochs": epochs, "checkpoint": CheckpointPlan(interval_seconds=0)}
    )
    network = build_model(plan.model, plan.input_shape, plan.task, impl="cpu")
    variables, _ = initial_variables(plan, network, path.parent, [])
    device = jax.devices("cpu")[0]
    trainer = build_supervised(plan, network, load_data(plan, path.parent), device, variables)
    saver = CheckpointCallback(out / name, plan)
    result = fit(trainer, plan, progress=False, callbacks=[saver])
    saver.close()
    epoch_s = statistics.median(result.series["epoch_time"][1:])
    save_s = statistics.median(saver.seconds[1:])  # the first save also builds the manager
    size = sum(p.stat().st_size for p in (out / name).rglob("*") if p.is_file())
    default = CheckpointPlan().interval_seconds
    return {
        "plan": name,
        "epoch_s": epoch_s,
        "save_s": save_s,
        "every_epoch_pct": 100 * save_s / epoch_s,
        "default_pct": 100 * save_s / max(default, epoch_s),
        "checkpoints_bytes": size,
    }


def cache_startup(plan: str, out: Path) -> list[dict]:
    rows = []
    cache = out / "jax-cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_PERSISTENT_CACHE")}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env["PYTHONPATH"] = str(ROOT)
    for label, setting in (("off", "0"), ("cold", str(cache)), ("warm", str(cache))):
        run_dir = out / f"run-{label}"
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "advisor.cli.commands",
                "run",
                str(ROOT / "examples/plans" / f"{plan}.json"),
                "--out",
                str(run_dir),
                "--json",
            ],
            env={**env, "ADVISOR_COMPILE_CACHE": setting},
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - started
        result = json.loads((run_dir / "run.json").read_text())
        history = json.loads((run_dir / "history.json").read_text())
        rows.append(
            {
                "cache": label,
                "process_s": wall,
                "compile_s": result["timing"]["compile_s"],
                "first_epoch_s": history["series"]["epoch_time"][0],
                "training_s": result["timing"]["elapsed_s"],
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--plans", default=",".join(PLANS))
    parser.add_argument("--cache-plan", default="digits_mlp")
    parser.add_argument("--skip-cache", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        print("| plan | epoch (s) | checkpoint save (s) | every epoch | default interval | size |")
        print("|---|---|---|---|---|---|")
        for name in args.plans.split(","):
            r = checkpoint_overhead(name, args.epochs, out)
            print(
                f"| {r['plan']} | {r['epoch_s']:.3f} | {r['save_s']:.3f} | "
                f"{r['every_epoch_pct']:.1f} % | {r['default_pct']:.2f} % | "
                f"{r['checkpoints_bytes'] / 1e6:.2f} MB |",
                flush=True,
            )
        if not args.skip_cache:
            print()
            print("| compile cache | process wall (s) | compile (s) | first epoch (s) |", end="")
            print(" training (s) |")
            print("|---|---|---|---|---|")
            for r in cache_startup(args.cache_plan, out):
                print(
                    f"| {r['cache']} | {r['process_s']:.1f} | {r['compile_s']:.1f} | "
                    f"{r['first_epoch_s']:.2f} | {r['training_s']:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
