"""The learning-rate range test, made trustworthy by repeating it over seeds.

A sweep trains one short run per rate on a log grid, all rates of a seed as
one population (``engine.searching.population``: vmapped where that measures faster),
each at a constant rate from the same initial weights, and takes the
validation loss each run ends with.  A seed's best rate is the minimum of that
curve after a three-point moving average, so one lucky point cannot decide and
a rate next to a diverged one is not picked.  The usual finder trusts a single
noisy sweep; here the sweep is repeated over ``seeds`` (other initial weights,
batch order and dropout), and the suggestion is the geometric mean of the
seeds' best rates, with their spread in decades.  No rate is suggested when
the seeds disagree by more than ``max_spread`` decades, when some seed's every
run diverged, or when a seed's best rate lies at an edge of the grid (the
minimum may lie outside it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from advisor.contract.schemas import LrFindReport, LrFindResult, LrFindSeed, Plan
from engine.searching import space as spaces

# Decades the seeds' best rates may span before the test refuses to suggest (a factor of ~3.2).
MAX_SPREAD = 0.5
# Short runs: at least this many steps, at most _MAX_STEPS unless whole epochs need more.
_MIN_STEPS, _MAX_STEPS = 50, 200


@dataclass(frozen=True)
class SweepOptions:
    """How the range test runs, as one value from the CLI down (the plan gives model and data)."""

    seeds: int = 3  # sweeps, each from another seed
    steps: int | None = None  # steps of each short run (default: two epochs within 50-200)
    min_lr: float | None = None  # lowest rate tried (default: the plan's rate / 1000)
    max_lr: float | None = None  # highest rate tried (default: the plan's rate x 100)
    points: int = 16  # rates on the log grid
    max_spread: float = MAX_SPREAD  # decades the seeds' best rates may span
    mode: str | None = None  # population, sequential, or None/auto to time both
    device: str | None = None  # auto, cpu, gpu or tpu (default: the plan's)


def sweep_plan(plan: Plan, steps: int | None) -> tuple[Plan, int]:
    """The plan a short run trains, and its steps: constant rate, no early stopping, whole epochs."""
    steps_per_epoch = plan.steps_per_epoch
    wanted = steps or min(_MAX_STEPS, max(_MIN_STEPS, 2 * steps_per_epoch))
    epochs = max(1, math.ceil(wanted / steps_per_epoch))
    if plan.freeze.strategy == "two_stage":  # the head stage would take every short epoch
        epochs = max(epochs, (plan.freeze.head_epochs or 0) + 1)
    short = spaces.trial_plan(plan, {}, epochs)
    short = short.model_copy(
        update={
            "schedule": short.schedule.model_copy(update={"name": "constant", "warmup_epochs": 0}),
            "regularization": short.regularization.model_copy(update={"early_stopping": None}),
        }
    )
    return short, epochs * steps_per_epoch


def rate_grid(plan: Plan, min_lr: float | None, max_lr: float | None, points: int) -> list[float]:
    """``points`` rates evenly spaced in log scale (default: the plan's rate / 1000 to x 100)."""
    low = min_lr or plan.optimizer.learning_rate / 1000
    high = max_lr or plan.optimizer.learning_rate * 100
    if not low < high:
        from advisor.contract.errors import InputError

        raise InputError(
            f"--min-lr: {low:g} is not below --max-lr {high:g}; expected min-lr < max-lr"
        )
    return [float(f"{r:.4g}") for r in np.geomspace(low, high, points)]


def best_rate(rates: list[float], losses: list[float | None]) -> float | None:
    """The rate at the minimum of the three-point moving average of the losses (None = all diverged).

    A diverged run counts as an infinite loss, so its neighbours are never chosen.
    """
    values = np.asarray([np.inf if v is None or not math.isfinite(v) else v for v in losses], float)
    if not np.isfinite(values).any():
        return None
    padded = np.concatenate([values[:1], values, values[-1:]])
    smoothed = (padded[:-2] + padded[1:-1] + padded[2:]) / 3.0
    if not np.isfinite(smoothed).any():  # isolated finite points between diverged ones
        smoothed = values
    return rates[int(np.argmin(smoothed))]


def verdict(
    rates: list[float], sweeps: list[LrFindSeed], max_spread: float
) -> tuple[LrFindResult | None, str | None]:
    """The suggestion and its spread, or why there is none."""
    lost = [s.seed for s in sweeps if s.learning_rate is None]
    if lost:
        return None, f"every rate diverged for seed {lost[0]}; lower --min-lr"
    best = [s.learning_rate for s in sweeps]
    spread = math.log10(max(best) / min(best))
    shown = ", ".join(f"{r:.3g}" for r in best)
    if spread > max_spread:
        return None, (
            f"the seeds disagree: their best rates ({shown}) span {spread:.2f} decades, more than "
            f"{max_spread:g}; one sweep would have been luck, so no rate is suggested "
            "(more --steps, or a plan with less noise, may settle it)"
        )
    edges = [r for r in best if r in (rates[0], rates[-1])]
    if edges:
        side = "lowest" if edges[0] == rates[0] else "highest"
        flag = "--min-lr" if side == "lowest" else "--max-lr"
        return (
            None,
            f"the best rate {edges[0]:.3g} is the {side} one tried, so the best may lie beyond it; widen the range ({flag})",
        )
    suggested = float(f"{math.exp(np.mean(np.log(best))):.3g}")
    return LrFindResult(learning_rate=suggested, spread=round(spread, 4)), None


def lr_find(
    plan: Plan,
    base_dir: str | Path = ".",
    options: SweepOptions = SweepOptions(),
    out_dir: str | Path | None = None,
) -> LrFindReport:
    """Run the range test on ``plan``'s model and data; returns the report (and writes lr_find.png to ``out_dir``)."""
    from engine.datasets.data import load_data
    from engine.runtime.device import select_device
    from engine.searching.population import Population
    from engine.searching.trials import train_trials

    short, n_steps = sweep_plan(plan, options.steps)
    rates = rate_grid(plan, options.min_lr, options.max_lr, options.points)
    chosen = select_device(options.device or plan.device)
    mode = options.mode
    dataset = load_data(short, base_dir)
    sweeps = []
    for offset in range(options.seeds):
        seed = plan.seed + offset
        runs = [
            spaces.trial_plan(short, {"optimizer.learning_rate": r, "seed": seed}) for r in rates
        ]
        population = Population(runs, ["optimizer.learning_rate"], dataset, chosen, base_dir)
        # timed on the first seed; the others have the same structure, so the same answer
        mode = population.choose_mode(len(runs), None if mode in (None, "auto") else mode).mode
        outcomes = train_trials(population, range(len(runs)), mode)
        losses = [o.value("val_loss") if o.status == "complete" else None for o in outcomes]
        losses = [v if v is not None and math.isfinite(v) else None for v in losses]
        sweeps.append(LrFindSeed(seed=seed, losses=losses, learning_rate=best_rate(rates, losses)))
    suggestion, refused = verdict(rates, sweeps, options.max_spread)
    plot = None
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        plot = str(
            plot_sweeps(
                Path(out_dir) / "lr_find.png", rates, sweeps, suggestion, plan.name or plan.task
            )
        )
    return LrFindReport(
        learning_rates=rates,
        steps=n_steps,
        metric="val_loss",
        seeds=sweeps,
        suggestion=suggestion,
        refused=refused,
        plot=plot,
    )


def plot_sweeps(
    path: Path,
    rates: list[float],
    sweeps: list[LrFindSeed],
    suggestion: LrFindResult | None,
    title: str,
) -> Path:
    """lr_find.png: each seed's loss against the rate, its best rate marked, and the suggestion."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from engine.outputs.curves import save_figure

    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.subplots()
    for sweep in sweeps:
        losses = [math.nan if v is None else v for v in sweep.losses]
        line = ax.plot(rates, losses, marker="o", markersize=3, label=f"seed {sweep.seed}")[0]
        if sweep.learning_rate is not None:
            ax.axvline(sweep.learning_rate, color=line.get_color(), alpha=0.4, linestyle=":")
    if suggestion is not None:
        ax.axvline(
            suggestion.learning_rate,
            color="black",
            label=f"suggested {suggestion.learning_rate:.3g}",
        )
    ax.set_xscale("log")
    finite = [v for s in sweeps for v in s.losses if v is not None]
    if finite:  # keep the interesting part in view when some rates blow up
        low, high = (
            min(finite),
            min(max(finite), float(np.median(finite)) + 3 * float(np.std(finite))),
        )
        pad = 0.05 * (high - low) or 0.05 * abs(low) or 0.05
        ax.set_ylim(low - pad, high + pad)
    ax.set(
        xlabel="learning rate",
        ylabel="validation loss after the short run",
        title=f"{title}: learning-rate range test",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
