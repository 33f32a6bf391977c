"""How ``advisor auto``'s lineage reads: one progress line per round, its markdown story and picture.

Rendering only: everything shown comes from the Lineage (``advisor.auto``
writes it); matplotlib is imported when the picture is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from advisor.contract.io import write_atomic
from advisor.contract.schemas import Lineage, LineageRound


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        text = str(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return str(value)


def change_text(r: LineageRound, limit: int = 3) -> str:
    """The plan diff in short: ``optimizer.learning_rate 0.05 -> 0.015, +2 more``."""
    shown = [f"{c.field} {_value(c.old)} -> {_value(c.new)}" for c in r.changes[:limit]]
    if len(r.changes) > limit:
        shown.append(f"+{len(r.changes) - limit} more")
    return ", ".join(shown) or "no change"


def score_text(r: LineageRound, lineage: Lineage) -> str:
    if r.score is None:
        return f"{lineage.metric} none (no usable model)"
    text = f"{lineage.metric} {r.score:.4f}"
    if r.change is not None:
        text += f" ({r.change:+.4f}{', new best' if r.improved else ''})"
    elif r.improved:
        text += " (first score)"
    return text


def progress_line(r: LineageRound, lineage: Lineage) -> str:
    """One line per round: what it tried, why, its score and what it cost."""
    if r.kind in ("recommended", "start"):
        why = "the recommended plan" if r.kind == "recommended" else "the given plan"
    elif r.kind == "search":
        why = f"search around round {r.parent}: {change_text(r)}"
    elif r.kind == "step":
        why = f"{r.cause} from round {r.parent}: {change_text(r)}"
    else:
        why = f"{r.cause} in round {r.parent}: {change_text(r)}"
    found = ", ".join(r.problems) or "-"
    return (
        f"round {r.round} {r.kind}: {why} | {score_text(r, lineage)} | diagnosis: {found} | "
        f"{r.seconds:.0f} s, {r.runs} run(s), {r.examples:,} examples"
    )


def _evidence(problem) -> str:
    shown = ", ".join(f"{k} = {_value(v)}" for k, v in list(problem.evidence.items())[:6])
    return (
        f"{problem.name} ({problem.rule}): {shown}" if shown else f"{problem.name} ({problem.rule})"
    )


def lineage_markdown(lineage: Lineage) -> str:
    """lineage.md: the summary, a table of the rounds, then each round's story with its numbers."""
    b, s = lineage.budget, lineage.spent
    limits = [
        f"{b.seconds:.0f} s" if b.seconds else None,
        f"{b.runs} runs" if b.runs else None,
        f"{b.examples:,} examples" if b.examples else None,
    ]
    lines = [
        f"# advisor auto: {lineage.data}",
        "",
        f"- scored by: {lineage.metric} ({lineage.direction}, rule `{lineage.metric_rule}`)",
        f"- budget: {', '.join(x for x in limits if x)}; spent {s.seconds:.0f} s, {s.runs} runs, "
        f"{s.examples:,} examples (n_train x epochs)",
        f"- stopped: {lineage.stopped or 'not finished'}",
        f"- best round (by validation): {lineage.best_round}",
    ]
    if lineage.final_plan:
        lines.append(f"- final plan: {lineage.final_plan}")
    if lineage.test_metrics:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(lineage.test_metrics.items()))
        lines.append(f"- test split, best round's model, measured once at the end: {shown}")
    lines += [
        "",
        "| round | kind | from | cause | changes | score | change | diagnosis | seconds | runs "
        "| examples |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in lineage.rounds:
        score = "-" if r.score is None else f"{r.score:.4f}"
        change = "-" if r.change is None else f"{r.change:+.4f}"
        best = " **best**" if r.round == lineage.best_round else ""
        lines.append(
            f"| {r.round}{best} | {r.kind} | {r.parent or '-'} | {r.cause} | "
            f"{change_text(r, 2).replace('|', '/')} | {score} | {change} | "
            f"{', '.join(r.problems) or '-'} | {r.seconds:.0f} | {r.runs} | {r.examples:,} |"
        )
    for r in lineage.rounds:
        lines += [
            "",
            f"## Round {r.round}: {r.kind}" + (f" of round {r.parent}" if r.parent else ""),
        ]
        lines.append(f"run folder: {r.run_dir}")
        if r.because:
            lines.append("")
            lines.append(f"Because round {r.parent}'s diagnosis found:")
            lines += [f"- {_evidence(p)}" for p in r.because]
        if r.step:
            lines += ["", f"Step: {r.step}"]
        if r.set_aside:
            lines += ["", "Findings set aside (a revision acted on them and scored worse):"]
            lines += [f"- {note}" for note in r.set_aside]
        if r.pruned:
            lines += ["", "Search space narrowed by earlier findings:"]
            lines += [
                f"- {p.field}: {p.bound} {_value(p.value)} after {p.problem}"
                + (f" in round {p.found_in}" if p.found_in else "")
                + f" (`{p.rule}`: {p.reason})"
                for p in r.pruned
            ]
        if r.changes:
            lines += ["", "Plan changes:"]
            lines += [f"- `{c.field}`: {_value(c.old)} -> {_value(c.new)}" for c in r.changes]
        lines += [
            "",
            f"Result: {score_text(r, lineage)}; diagnosis: {', '.join(r.problems) or '-'}",
        ]
    return "\n".join(lines) + "\n"


def plot_lineage(lineage: Lineage, path: Path) -> Path:
    """lineage.png: validation score per round, each point labelled with the change behind it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r for r in lineage.rounds if r.score is not None]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(lineage.rounds) + 3), 4.5))
    xs, ys = [r.round for r in rounds], [r.score for r in rounds]
    ax.plot(xs, ys, "-", color="0.7", zorder=1)
    for r in rounds:
        color = "tab:green" if r.improved else "tab:red"
        marker = "*" if r.round == lineage.best_round else "o"
        ax.scatter([r.round], [r.score], color=color, marker=marker, s=160 if marker == "*" else 50)
        label = r.kind if r.kind in ("recommended", "start") else r.cause
        fields = [c.field.split(".")[-1] for c in r.changes if c.field != "epochs"]
        if fields and r.kind in ("revision", "search", "step"):
            label += "\n" + ", ".join(fields[:2]) + (" ..." if len(fields) > 2 else "")
        ax.annotate(
            label,
            (r.round, r.score),
            textcoords="offset points",
            xytext=(0, 9),
            ha="center",
            fontsize=8,
        )
    ax.set_xlabel("round")
    ax.set_ylabel(f"{lineage.metric} ({lineage.direction})")
    ax.set_xticks([r.round for r in lineage.rounds])
    ax.set_title(f"advisor auto: {lineage.data} (best round {lineage.best_round})", fontsize=10)
    ax.margins(x=0.15, y=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_reports(out: Path, lineage: Lineage, plot: bool = True) -> None:
    """lineage.md (and lineage.png) beside lineage.json."""
    write_atomic(out / "lineage.md", lineage_markdown(lineage))
    if plot and lineage.rounds:
        plot_lineage(lineage, out / "lineage.png")


def summary(lineage: Lineage, out: Path) -> str:
    """What the CLI prints at the end."""
    lines = [f"auto: {out}  stopped: {lineage.stopped}"]
    best = next((r for r in lineage.rounds if r.round == lineage.best_round), None)
    if best is not None:
        lines.append(f"best round {best.round} ({best.kind}): {score_text(best, lineage)}")
        first = lineage.rounds[0]
        if first.score is not None and best.score is not None and best.round != first.round:
            lines.append(f"first plan {first.score:.4f} -> best {best.score:.4f}")
    if lineage.test_metrics:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(lineage.test_metrics.items()))
        lines.append(f"test (best round's model, held out, measured once): {shown}")
    lines.append("files: lineage.md, lineage.json, lineage.png, final_plan.json, round-NN/")
    return "\n".join(lines)
