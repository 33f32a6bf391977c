"""What a search leaves behind: leaderboard, best plan, search.png and search.json.

Everything is read back from the study, so the report covers the trials of
every worker that shared it.  ``best_plan.json`` is an ordinary plan (no
search section) that ``advisor run`` trains: each searched field carries an
explanation naming the search, the trial and its metric, with the rule that
had set it before kept as the overridden one.  The leaderboard ranks finished
trials by the metric, then pruned ones, then failed ones.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from optuna.trial import TrialState

from advisor.contract.io import write_atomic, write_model
from advisor.contract.schemas import Explanation, ModeTiming, Overridden, Plan, SearchResult
from engine.outputs.curves import save_figure
from engine.searching import space as spaces

LEADERBOARD = "leaderboard.csv"
BEST_PLAN = "best_plan.json"
PLOT = "search.png"
SUMMARY = "search.json"
# A trial asked for after the budget was spent (by a worker racing another) is marked so.
SURPLUS = "surplus"
# The user attribute that records how a trial ran (status, epochs, mode, worker, history path).
RUN = "run"
_SAMPLERS = {"grid": "GridSampler", "random": "RandomSampler", "tpe": "TPESampler"}


@dataclass(frozen=True)
class Row:
    """One trial on the leaderboard."""

    rank: int | None
    number: int
    state: str  # complete, pruned, diverged, failed, running
    value: float | None
    epochs: int | None
    params: dict
    seconds: float | None
    mode: str | None


def _status(trial) -> str:
    if trial.state == TrialState.COMPLETE:
        return trial.user_attrs.get(RUN, {}).get("status", "complete")
    return trial.state.name.lower()


def leaderboard(study, plan: Plan) -> list[Row]:
    """Every trial of the study (surplus asks left out), best first."""
    space = plan.search.space
    sign = 1.0 if plan.search.direction == "minimize" else -1.0
    order = {"complete": 0, "pruned": 1, "diverged": 2, "fail": 3, "running": 4, "waiting": 4}
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(SURPLUS)]

    def key(t):
        value = t.value if t.value is not None and math.isfinite(t.value) else math.inf
        return (order.get(_status(t), 5), sign * value if value != math.inf else math.inf, t.number)

    rows, rank = [], 0
    for t in sorted(trials, key=key):
        status = _status(t)
        ranked = status == "complete"
        rank += ranked
        run = t.user_attrs.get(RUN, {})
        rows.append(
            Row(
                rank=rank if ranked else None,
                number=t.number,
                state=status,
                value=t.value if status != "diverged" else None,
                epochs=run.get("epochs"),
                params={p: spaces.decode(v, space[p]) for p, v in t.params.items() if p in space},
                seconds=run.get("seconds"),
                mode=run.get("mode"),
            )
        )
    return rows


def _show(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def leaderboard_csv(rows: list[Row], plan: Plan) -> str:
    """The leaderboard as CSV text: rank, trial, state, metric, epochs, each parameter, seconds, mode."""
    names = list(plan.search.space)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["rank", "trial", "state", plan.search.metric, "epochs", *names, "seconds", "mode"]
    )
    for r in rows:
        writer.writerow(
            [
                r.rank or "",
                r.number,
                r.state,
                "" if r.value is None else repr(r.value),
                r.epochs or "",
                *[r.params.get(n, "") for n in names],
                "" if r.seconds is None else r.seconds,
                r.mode or "",
            ]
        )
    return out.getvalue()


# ----------------------------------------------------------------------------- the best plan


def best_plan(
    plan: Plan, best: Row, n_finished: int, priorities: Mapping[str, int] | None = None
) -> Plan:
    """``plan`` with the best trial's values, no search section, and explanations that say so.

    ``priorities`` (rule id -> priority, from the caller's rule base) rank the
    rules a searched value overrides; a rule it does not name counts 0.
    """
    search = plan.search
    values = best.params
    trained = search.epochs_per_trial
    chosen = spaces.trial_plan(plan, values)
    priorities = priorities or {}
    explanations = {k: v for k, v in plan.explanations.items() if not k.startswith("search")}
    epochs_note = (
        f"; trials trained {trained} epoch{'s' if trained != 1 else ''}, this plan trains {plan.epochs}"
        if trained and trained != plan.epochs
        else ""
    )
    for path, value in values.items():
        before = explanations.get(path)
        overridden = []
        if before is not None and before.value != value:
            overridden.append(
                Overridden(
                    rule=before.rule,
                    value=before.value,
                    priority=priorities.get(before.rule, 0),
                    reason=before.reason,
                )
            )
        explanations[path] = Explanation(
            value=value,
            rule="search",
            reason=(
                f"Trial {best.number} of the {search.method} search set it: the best {search.metric} "
                f"({best.value:.4g}, {search.direction}d) of {n_finished} finished trials{epochs_note}."
            ),
            source=f"advisor search (Optuna {_SAMPLERS[search.method]}); lecture 7.1, hyperparameter search",
            matched={
                "search.method": search.method,
                "trial": best.number,
                search.metric: best.value,
            },
            overridden=overridden,
        )
    return chosen.model_copy(update={"explanations": explanations, "output_dir": None})


# ----------------------------------------------------------------------------- the picture


def plot_search(path: Path, rows: list[Row], plan: Plan) -> Path | None:
    """search.png: the metric per trial (best so far as a line) and against each searched field."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    search = plan.search
    done = [r for r in rows if r.value is not None and math.isfinite(r.value)]
    if not done:
        return None
    names = list(search.space)
    fig = Figure(figsize=(4.2 * (1 + len(names)), 3.6), layout="constrained")
    axes = fig.subplots(1, 1 + len(names), squeeze=False)[0]
    by_number = sorted(done, key=lambda r: r.number)
    colors = {"complete": "tab:blue", "pruned": "tab:orange"}
    ax = axes[0]
    ax.scatter(
        [r.number for r in by_number],
        [r.value for r in by_number],
        c=[colors.get(r.state, "tab:gray") for r in by_number],
        s=18,
    )
    best, line = None, []
    for r in by_number:
        if r.state == "complete" and (
            best is None or (r.value < best if search.direction == "minimize" else r.value > best)
        ):
            best = r.value
        line.append(best if best is not None else math.nan)
    ax.step(
        [r.number for r in by_number], line, where="post", color="tab:green", label="best so far"
    )
    ax.set(xlabel="trial", ylabel=search.metric, title=f"{search.method} search")
    ax.legend(fontsize=8)
    for ax, name in zip(axes[1:], names, strict=True):
        param = search.space[name]
        xs = [r.params.get(name) for r in done]
        if param.type == "categorical":
            labels = [_show(c) for c in param.choices]
            xs = [labels.index(_show(x)) if _show(x) in labels else math.nan for x in xs]
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
        elif param.log:
            ax.set_xscale("log")
        ax.scatter(
            xs, [r.value for r in done], c=[colors.get(r.state, "tab:gray") for r in done], s=18
        )
        ax.set(xlabel=name, ylabel=search.metric)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f"{plan.name or plan.task}: {len(done)} trials (blue finished, orange pruned)")
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- all together


def write_report(
    study,
    plan: Plan,
    out_dir: Path,
    storage: str,
    modes: list[ModeTiming],
    trials_per_hour: float | None,
    write_files: bool = True,
    priorities: Mapping[str, int] | None = None,
) -> SearchResult:
    """Write leaderboard.csv, best_plan.json, search.png and search.json; return the SearchResult."""
    rows = leaderboard(study, plan)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    complete = [r for r in rows if r.state == "complete"]
    best = complete[0] if complete else None
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"leaderboard": out_dir / LEADERBOARD, "best_plan": None, "plot": None}
    if write_files:
        write_atomic(paths["leaderboard"], leaderboard_csv(rows, plan))
        if best is not None:
            paths["best_plan"] = out_dir / BEST_PLAN
            write_model(
                paths["best_plan"],
                best_plan(plan, best, len(complete) + counts.get("pruned", 0), priorities),
            )
        paths["plot"] = plot_search(out_dir / PLOT, rows, plan)
    result = SearchResult(
        out_dir=str(out_dir),
        study_name=study.study_name,
        storage=storage,
        method=plan.search.method,
        metric=plan.search.metric,
        direction=plan.search.direction,
        counts=counts,
        best_trial=best.number if best else None,
        best_value=best.value if best else None,
        best_plan=str(paths["best_plan"]) if paths["best_plan"] else None,
        leaderboard=str(paths["leaderboard"]),
        plot=str(paths["plot"]) if paths["plot"] else None,
        trials_per_hour=trials_per_hour,
        modes=modes,
    )
    if write_files:
        write_model(out_dir / SUMMARY, result)
    return result
