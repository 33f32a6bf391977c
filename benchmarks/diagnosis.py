"""Agreement of ``advisor diagnose`` with the labelled corpus of real training histories.

    python benchmarks/diagnosis.py                  # every part, markdown
    python benchmarks/diagnosis.py --part tune      # only the part thresholds may be fitted on
    python benchmarks/diagnosis.py --part holdout --json
    python benchmarks/diagnosis.py --part fresh     # gathered and labelled after calibration
    python benchmarks/diagnosis.py --part fresh2    # a second held-out set, gathered later
    python benchmarks/diagnosis.py --part fresh3    # a third, gathered after the criteria were settled

The corpus is tests/corpus/entries/<id>/ (history file + meta.toml, layout and labelling
criteria in tests/corpus/CRITERIA.md).  An entry whose meta.toml says ``part = "fresh"``,
``"fresh2"`` or ``"fresh3"`` was gathered and labelled after the thresholds were calibrated and
is in that part of its own, never in tune, holdout or the other held-out part.  Of the
others, an entry is in the holdout part when ``int(sha256(id).hexdigest(), 16) % 3 == 0``,
else in the tune part; ``--part tune`` never opens a holdout or held-out entry's history
files.  Each history is diagnosed twice:
with the task and class count of its meta.toml (when the source states them) and blind.
Scored is the primary problem against the label's ``primary``: agreement, per-label
precision and recall, healthy precision (when the diagnosis says healthy, the label is
healthy), a confusion matrix (label x predicted), the misses, and the files that failed
to read.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
ENTRIES = ROOT / "tests" / "corpus" / "entries"
MODES = ("with_task", "blind")
PARTS = ("tune", "holdout", "fresh", "fresh2", "fresh3")
HELD_OUT = (
    "fresh",
    "fresh2",
    "fresh3",
)  # parts named by meta.toml, in the order they were gathered
SECOND_READING = ROOT / "tests" / "corpus" / "second_reading.toml"


def part_of(entry_id: str, meta: dict | None = None) -> str:
    """The held-out part meta.toml names (one of HELD_OUT); else 'holdout' for a third
    of the ids (by the id alone) and 'tune' for the rest."""
    named = (meta or {}).get("part")
    if named in HELD_OUT:
        return named
    return "holdout" if int(hashlib.sha256(entry_id.encode()).hexdigest(), 16) % 3 == 0 else "tune"


def entries(part: str) -> list[tuple[Path, dict]]:
    """(folder, meta) of every entry of ``part`` (one of PARTS, or 'all'), by id."""
    found = []
    for folder in sorted(ENTRIES.iterdir()) if ENTRIES.is_dir() else []:
        meta_path = folder / "meta.toml"
        if not folder.is_dir() or not meta_path.is_file():
            continue
        try:
            meta = tomllib.loads(meta_path.read_text())
        except tomllib.TOMLDecodeError as exc:
            meta = {"error": f"meta.toml: {exc}"}
        if part != "all" and part_of(folder.name, meta) != part:
            continue
        found.append((folder, meta))
    return found


def diagnose_entry(folder: Path, meta: dict, mode: str) -> dict:
    """The diagnosis of one entry in one mode, as a small record (or the read error)."""
    from advisor.contract.errors import AdvisorError
    from advisor.diagnostics.diagnosis import diagnose
    from advisor.readers import load_history

    record = {"id": folder.name, "label": meta.get("primary"), "mode": mode}
    try:
        history = load_history(folder / meta["file"])
        task = meta.get("task")
        if mode == "with_task" and task not in (None, "unknown"):
            history = history.model_copy(
                update={"task": task, "n_classes": meta.get("n_classes") or history.n_classes}
            )
        diagnosis = diagnose(history)
    except (AdvisorError, KeyError, OSError, ValueError) as exc:
        record["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return record
    record["primary"] = diagnosis.primary
    record["problems"] = [p.name for p in diagnosis.problems]
    record["chance"] = diagnosis.features.get("curve.chance_source")
    return record


def score(records: list[dict]) -> dict:
    """Agreement, healthy precision, per-label precision/recall, confusion, misses, failures."""
    read = [r for r in records if "error" not in r and r["label"]]
    agree = sum(r["primary"] == r["label"] for r in read)
    said_healthy = [r for r in read if r["primary"] == "healthy"]
    labels = sorted({r["label"] for r in read} | {r["primary"] or "none" for r in read})
    per_label = {}
    for name in labels:
        tp = sum(r["label"] == name and r["primary"] == name for r in read)
        predicted = sum(r["primary"] == name for r in read)
        support = sum(r["label"] == name for r in read)
        per_label[name] = {
            "support": support,
            "predicted": predicted,
            "precision": tp / predicted if predicted else None,
            "recall": tp / support if support else None,
        }
    confusion = Counter((r["label"], r["primary"] or "none") for r in read)
    return {
        "entries": len(records),
        "read": len(read),
        "agreement": agree / len(read) if read else None,
        "healthy_precision": (
            sum(r["label"] == "healthy" for r in said_healthy) / len(said_healthy)
            if said_healthy
            else None
        ),
        "per_label": per_label,
        "confusion": {f"{a} -> {b}": n for (a, b), n in sorted(confusion.items())},
        "misses": [
            f"{r['id']}: label {r['label']}, primary {r['primary']}"
            f" (all: {', '.join(r['problems'])})"
            for r in read
            if r["primary"] != r["label"]
        ],
        "failed": [f"{r['id']}: {r['error']}" for r in records if "error" in r],
        "second_reader": second_reader(records),
    }


def second_reader(records: list[dict]) -> dict | None:
    """Agreement of a blind second reader with the first label, and of the tool with the
    second reader, on the entries the second reading covers (None when it covers none)."""
    second = tomllib.loads(SECOND_READING.read_text()) if SECOND_READING.is_file() else {}
    both = [r for r in records if "error" not in r and r["label"] and r["id"] in second]
    if not both:
        return None
    clear = [r for r in both if not second[r["id"]].get("borderline")]
    return {
        "entries": len(both),
        "readers": sum(second[r["id"]]["primary"] == r["label"] for r in both) / len(both),
        "tool_vs_second": sum(second[r["id"]]["primary"] == r["primary"] for r in both) / len(both),
        "clear_entries": len(clear),
        "readers_clear": (
            sum(second[r["id"]]["primary"] == r["label"] for r in clear) / len(clear)
            if clear
            else None
        ),
        "tool_clear": (
            sum(r["primary"] == r["label"] for r in clear) / len(clear) if clear else None
        ),
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f} %"


def render(part: str, results: dict[str, dict], seconds: float) -> list[str]:
    """One part's scores as markdown: summary, per-label table, confusion, misses, failures."""
    blind, told = results["blind"], results["with_task"]
    lines = [
        f"### {part}: {told['entries']} histories ({told['read']} read), {seconds:.1f} s",
        "",
        "| scored | primary agreement | healthy precision |",
        "|---|---:|---:|",
        f"| task and classes from meta.toml | {_pct(told['agreement'])} | "
        f"{_pct(told['healthy_precision'])} |",
        f"| blind (no task given) | {_pct(blind['agreement'])} | "
        f"{_pct(blind['healthy_precision'])} |",
        "",
    ]
    readers = told.get("second_reader")
    if readers:
        lines += [
            f"Second, blind reader (tests/corpus/second_reading.toml, {readers['entries']}"
            f" entries): agrees with the first label on {_pct(readers['readers'])}; the tool"
            f" (task given) agrees with the second reader on {_pct(readers['tool_vs_second'])}."
            f" On the {readers['clear_entries']} entries the second reader did not mark"
            f" borderline: readers {_pct(readers['readers_clear'])}, tool vs first label"
            f" {_pct(readers['tool_clear'])}.",
            "",
        ]
    lines += [
        "| label | support | predicted | precision | recall |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in told["per_label"].items():
        lines.append(
            f"| {name} | {row['support']} | {row['predicted']} | {_pct(row['precision'])} | "
            f"{_pct(row['recall'])} |"
        )
    labels = sorted({k.split(" -> ")[0] for k in told["confusion"]})
    predicted = sorted({k.split(" -> ")[1] for k in told["confusion"]})
    lines += ["", "Confusion (rows: label, columns: predicted primary, task given):", ""]
    lines.append("| label \\ predicted | " + " | ".join(predicted) + " |")
    lines.append("|---|" + "---:|" * len(predicted))
    for a in labels:
        cells = [str(told["confusion"].get(f"{a} -> {b}", "")) for b in predicted]
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    lines += ["", "Misses (task given):"] + [f"- {m}" for m in told["misses"]]
    only_blind = sorted(set(blind["misses"]) - set(told["misses"]))
    if only_blind:
        lines += ["", "Misses only when blind:"] + [f"- {m}" for m in only_blind]
    if told["failed"]:
        lines += ["", "Failed to read:"] + [f"- {f}" for f in told["failed"]]
    return lines + [""]


@click.command()
@click.option(
    "--part",
    type=click.Choice([*PARTS, "all"]),
    default="all",
    help="which part of the corpus (all = every part, reported apart)",
)
@click.option("--json", "as_json", is_flag=True, help="print the scores and records as JSON")
def main(part: str, as_json: bool) -> None:
    """Score the diagnosis on the corpus, per part."""
    parts = PARTS if part == "all" else (part,)
    report, lines = {}, []
    for name in parts:
        started = time.perf_counter()
        found = entries(name)
        records = {mode: [diagnose_entry(f, m, mode) for f, m in found] for mode in MODES}
        seconds = time.perf_counter() - started
        results = {mode: score(records[mode]) for mode in MODES}
        report[name] = {"seconds": seconds, **results, "records": records}
        lines += render(name, results, seconds)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
