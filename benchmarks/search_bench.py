"""Hyperparameter search throughput: trials one at a time, in turn through one program, vmapped, and Optuna-driven.

A learning-rate x weight-decay search (adamw; rate log-uniform in [1e-4, 3e-2],
decay log-uniform in [1e-6, 1e-2]) over the engine benchmark's two models, in
one run, each way on the same trials:

* alone:       each trial as ``advisor run`` trains it (its own build and compile)
* sequential:  the trials one after another through one compiled program (engine.searching.population, unvmapped)
* population:  every trial at once, one vmapped compiled program
* optuna-tpe / optuna-random:  ``engine.searching.search`` choosing the trials (in batches of a quarter of
  the trials, at most 64), population or sequential as its timing decides

Reported per way: wall seconds (compiles included), trials per hour, trial-samples
per second (trials x epochs x training examples / wall), the best validation
accuracy reached, and the speed over ``sequential``.

    python benchmarks/search_bench.py               # CPU: MLP (digits 64) and small CNN (digits 28x28x1), 32 trials
    python benchmarks/search_bench.py --quick       # a fast smoke run (fewer examples and trials)
    python benchmarks/search_bench.py --gpu         # GPU: 64 small-CNN trials, 32x32x3 shapes, bf16, 1 epoch of 50k
    python benchmarks/search_bench.py --gpu --quick # GPU: the same on 10k images

The CNN is the engine benchmark's small CNN as a plan can state it: conv 32 ->
conv 64 (3x3, SAME, 2x2 max pooling after each) -> dense 128 -> output.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@dataclass
class Way:
    """One way of running the trials, and what it gave."""

    name: str
    trials: int
    seconds: float
    best_accuracy: float
    note: str = ""

    def per_hour(self) -> float:
        return self.trials / self.seconds * 3600


# ----------------------------------------------------------------------------- plans


def base_plan(kind: str, gpu: bool, quick: bool, epochs: int, data_dir: Path):
    """The benchmark model's plan (adamw, no schedule, no early stopping)."""
    from advisor.contract.schemas import Plan

    if gpu:
        n = 10_000 if quick else 50_000
        path = shapes_npz(n, data_dir)
        source, shape, n_classes, n_train = (
            {"kind": "npz", "path": str(path)},
            [32, 32, 3],
            4,
            int(n * 0.8),
        )
    elif kind == "mlp":
        source, shape, n_classes, n_train = {"kind": "builtin", "name": "digits"}, [64], 10, 1438
    else:
        subsample = 512 if quick else None
        source = {
            "kind": "builtin",
            "name": "digits",
            "image_size": [28, 28],
            "subsample": subsample,
        }
        shape, n_classes, n_train = [28, 28, 1], 10, subsample or 1438
    model = (
        {"arch": "mlp", "hidden_layers": 2, "units": 256, "output_units": n_classes}
        if kind == "mlp"
        else {
            "arch": "cnn",
            "filters": [32, 64],
            "kernel_size": 3,
            "pooling": "max",
            "head_units": [128],
            "output_units": n_classes,
        }
    )
    batch = 256 if gpu else 128
    return Plan.model_validate(
        {
            "name": f"bench-{kind}",
            "task": "multiclass",
            "modality": "tabular" if kind == "mlp" else "image",
            "input_shape": shape,
            "n_classes": n_classes,
            "n_train": n_train,
            "data": {"source": source, "val_fraction": 0.2, "split_seed": 0},
            "model": model,
            "loss": {"name": "sparse_categorical_crossentropy"},
            "optimizer": {"name": "adamw", "learning_rate": 1e-3, "weight_decay": 1e-4},
            "schedule": {"name": "constant"},
            "batch_size": batch,
            "epochs": epochs,
            "steps_per_epoch": math.ceil(n_train / batch),
            "freeze": {"strategy": "from_scratch"},
            "regularization": {},
            "metrics": ["accuracy"],
            "seed": 0,
            "precision": "bfloat16" if gpu else "float32",
        }
    )


def shapes_npz(n: int, folder: Path) -> Path:
    """Generated shapes tinted per channel: a CIFAR-shaped (32x32x3) stand-in with 4 classes."""
    from engine.datasets.sources import make_shapes

    path = folder / f"shapes_{n}.npz"
    if not path.exists():
        x, y = make_shapes(n, (32, 32), seed=0)
        tint = np.random.default_rng(1).uniform(0.3, 1.0, (n, 1, 1, 3)).astype(np.float32)
        np.savez(path, x=(x * tint).astype(np.float32), y=y)
    return path


SPACE = {
    "optimizer.learning_rate": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
    "optimizer.weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
}


def fixed_trials(plan, n: int):
    """The same ``n`` random (rate, decay) pairs for the ways that need no sampler."""
    from engine.searching.space import trial_plan

    rng = np.random.default_rng(0)
    rates = np.exp(rng.uniform(np.log(1e-4), np.log(3e-2), n))
    decays = np.exp(rng.uniform(np.log(1e-6), np.log(1e-2), n))
    return [
        trial_plan(plan, {"optimizer.learning_rate": float(r), "optimizer.weight_decay": float(d)})
        for r, d in zip(rates, decays, strict=True)
    ]


# ----------------------------------------------------------------------------- the ways


def _final_accuracy(result) -> float:
    """val_accuracy at the epoch the run ends with (what the search ranks by)."""
    epoch = result.best_epoch or (result.epochs[-1] if result.epochs else None)
    value = result.at(epoch).get("val_accuracy") if epoch else None
    return value if value is not None and math.isfinite(value) else float("nan")


def way_alone(plans, dataset, device, limit: int | None) -> Way:
    """Each trial built and trained as ``advisor run`` does (engine.training.fit), compile included."""
    import jax.numpy as jnp

    from engine.nn.models import build_model
    from engine.run import initial_variables
    from engine.training.fit import Diverged, fit
    from engine.training.supervised import build_supervised

    chosen = plans[: limit or len(plans)]
    best = []
    started = time.perf_counter()
    for plan in chosen:
        dtype = (
            jnp.bfloat16
            if plan.precision == "bfloat16" and device.platform != "cpu"
            else jnp.float32
        )
        network = build_model(
            plan.model,
            plan.input_shape,
            plan.task,
            impl="cpu" if device.platform == "cpu" else "xla",
            dtype=dtype,
        )
        variables, _ = initial_variables(plan, network, Path("."), [])
        trainer = build_supervised(plan, network, dataset, device, variables)
        try:
            result = fit(trainer, plan, progress=False)
        except Diverged as err:
            result = err.result
        best.append(_final_accuracy(result))
    seconds = time.perf_counter() - started
    note = f"{len(chosen)} of {len(plans)} trials timed" if len(chosen) < len(plans) else ""
    return Way("alone (advisor run each)", len(chosen), seconds, float(np.nanmax(best)), note)


def way_population(plans, dataset, device, mode: str) -> Way:
    """Every trial through one compiled program: vmapped together, or one after another."""
    from engine.searching.population import Population
    from engine.searching.trials import train_trials

    started = time.perf_counter()
    population = Population(plans, list(SPACE), dataset, device)
    outcomes = train_trials(population, range(len(plans)), mode)
    seconds = time.perf_counter() - started
    best = np.nanmax([_final_accuracy(o.result) for o in outcomes])
    name = "population (vmapped)" if mode == "population" else "sequential (one program)"
    return Way(name, len(plans), seconds, float(best))


def way_optuna(plan, n: int, method: str, device_name: str, folder: Path) -> Way:
    """engine.searching.search with Optuna's sampler choosing the trials (timing decides the mode)."""
    from advisor.contract.schemas import SearchPlan
    from engine.searching.search import run_search

    search = {
        "method": method,
        "space": SPACE,
        "n_trials": n,
        "metric": "val_accuracy",
        "direction": "maximize",
    }
    searched = plan.model_copy(update={"search": SearchPlan.model_validate(search)})
    out = folder / f"{plan.name}-{method}"
    started = time.perf_counter()
    result = run_search(searched, out, device=device_name, progress=False, report=lambda line: None)
    seconds = time.perf_counter() - started
    modes = "; ".join(
        f"{m.mode} x{m.trials}" + (f" (timed {m.speedup:.2f}x)" if m.speedup else "")
        for m in result.modes
    )
    return Way(
        f"optuna-{method}",
        sum(result.counts.values()),
        seconds,
        result.best_value or float("nan"),
        modes,
    )


# ----------------------------------------------------------------------------- driver


def bench(kind: str, args, folder: Path) -> list[str]:
    import jax

    from engine.datasets.data import load_data

    epochs = args.epochs or (1 if args.gpu or kind == "cnn" else 5)
    plan = base_plan(kind, args.gpu, args.quick, epochs, folder)
    n = args.trials or (64 if args.gpu else (8 if args.quick else 32))
    device = jax.devices()[0]
    dataset = load_data(plan)
    plans = fixed_trials(plan, n)
    ways = []
    for name in args.ways.split(","):
        if name == "alone":
            ways.append(
                way_alone(plans, dataset, device, args.alone_trials or (4 if args.gpu else None))
            )
        elif name in ("sequential", "population"):
            ways.append(way_population(plans, dataset, device, name))
        elif name.startswith("optuna-"):
            ways.append(way_optuna(plan, n, name.removeprefix("optuna-"), device.platform, folder))
        print(f"  {kind}: {ways[-1].name} done in {ways[-1].seconds:.1f} s", flush=True)
    samples = dataset.n_train * epochs
    steady = steady_state(plans, dataset, device) if n > 1 else None
    lines = [
        f"{kind}: {n} trials x {epochs} epoch(s) x {dataset.n_train} examples, batch {plan.batch_size}, {plan.precision}, on {device.device_kind}",
        "| way | wall s | trials/hour | trial-samples/s | best val_accuracy | vs sequential | note |",
        "|---|---|---|---|---|---|---|",
    ]
    reference = next((w for w in ways if w.name.startswith("sequential")), None)
    for w in ways:
        ratio = f"{w.per_hour() / reference.per_hour():.2f}x" if reference else ""
        lines.append(
            f"| {w.name} | {w.seconds:.1f} | {w.per_hour():,.0f} | {w.trials * samples / w.seconds:,.0f} | {w.best_accuracy:.3f} | {ratio} | {w.note} |"
        )
    if steady is not None:
        rate = plan.batch_size / steady.sequential_s
        lines.append(
            f"steady state (timed steps, compiles left out): one trial {rate:,.0f} samples/s, the population of {n} "
            f"{n * plan.batch_size / steady.population_s:,.0f} trial-samples/s = {steady.speedup:.2f}x; compiles "
            f"{steady.population_compile_s:.1f} s vmapped vs {steady.sequential_compile_s:.1f} s single; the engine picks {steady.mode}"
        )
    return lines


def steady_state(plans, dataset, device):
    """Step times and compiles of both modes for all the trials (engine.searching.population.choose_mode)."""
    from engine.searching.population import Population

    return Population(plans, list(SPACE), dataset, device).choose_mode(len(plans))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--gpu", action="store_true", help="64 small-CNN trials on 32x32x3 shapes in bf16"
    )
    parser.add_argument("--quick", action="store_true", help="fewer examples (and trials on CPU)")
    parser.add_argument(
        "--models", default=None, help="comma list of mlp, cnn (default: both; --gpu: cnn)"
    )
    parser.add_argument("--ways", default="alone,sequential,population,optuna-tpe,optuna-random")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--alone-trials",
        type=int,
        default=None,
        help="trials timed one at a time (default all; --gpu 4)",
    )
    args = parser.parse_args()
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

    import jax

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; jax {jax.__version__} on {jax.devices()[0]}"
    )
    models = args.models.split(",") if args.models else (["cnn"] if args.gpu else ["mlp", "cnn"])
    with tempfile.TemporaryDirectory() as tmp:
        tables = [bench(kind, args, Path(tmp)) for kind in models]
    print()
    for table in tables:
        print("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
