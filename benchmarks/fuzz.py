"""Fuzz every command and API entry point: the hand-made corpus plus N mutated inputs.

    python benchmarks/fuzz.py --cases 3000              # corpus + 3000 mutants, table on stdout
    python benchmarks/fuzz.py --cases 3000 --append     # ... and appended to benchmarks/RESULTS.md

The cases run in a child process (in-process CLI calls, ``tests/fuzz/harness.py``)
that writes one JSON line per finished case; when the child dies, the case it
was on is recorded as a crash and a new child goes on from the next case.
Goal (issue 16): 0 tracebacks, 0 hangs (30 s; 120 s for the commands that
train when a mutated plan is valid), 0 crashes, 0 files written on error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = (
    "cases",
    "ok",
    "error",
    "traceback",
    "hang",
    "crash",
    "wrote",
    "noisy",
    "echoed",
    "unexpected",
)
HEAD = COLUMNS + ("slowest s",)


def all_cases(n: int, seed: int):
    from tests.fuzz.corpus import corpus, mutants

    return [*corpus(), *mutants(n, seed)]


def child(start: int, n: int, seed: int, limit_s: float, out: Path, work: Path) -> None:
    """Run cases from ``start`` on, appending one JSON line per case to ``out``."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ["ADVISOR_CACHE"] = str(work / "cache")
    from tests.fuzz.harness import run_case

    cases = all_cases(n, seed)
    with out.open("a") as handle:
        for index in range(start, len(cases)):
            handle.write(json.dumps({"index": index, "started": cases[index].name}) + "\n")
            handle.flush()
            outcome = run_case(cases[index], work / f"case{index}", limit_s)
            handle.write(json.dumps({"index": index, **outcome.as_dict()}) + "\n")
            handle.flush()


def run_all(n: int, seed: int, limit_s: float) -> list[dict]:
    from tests.fuzz.corpus import corpus

    total = len(corpus()) + n
    results: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="advisor-fuzz-") as tmp:
        work = Path(tmp)
        out = work / "results.jsonl"
        start = 0
        while start < total:
            command = [
                sys.executable,
                __file__,
                "--child",
                str(start),
                "--cases",
                str(n),
                "--seed",
                str(seed),
                "--limit",
                str(limit_s),
                "--out",
                str(out),
                "--work",
                str(work),
            ]
            proc = subprocess.run(
                command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            started = None
            for line in out.read_text().splitlines():
                record = json.loads(line)
                if "outcome" in record:
                    results[record["index"]] = record
                else:
                    started = record
            if proc.returncode == 0 and len(results) >= total:
                break
            if started is None or started["index"] in results:
                raise SystemExit(f"fuzz child failed before any case: {proc.stderr[-2000:]}")
            index = started["index"]
            results[index] = {
                "index": index,
                "name": started["started"],
                "klass": "?",
                "command": started["started"].rsplit("/", 1)[-1],
                "outcome": "crash",
                "exit_code": proc.returncode,
                "seconds": 0.0,
                "detail": proc.stderr[-300:],
            }
            start = index + 1
    return [results[i] for i in sorted(results)]


def table(records: list[dict]) -> str:
    by_command: dict[str, Counter] = defaultdict(Counter)
    slowest: dict[str, float] = defaultdict(float)
    for record in records:
        command = record["command"]
        by_command[command]["cases"] += 1
        by_command[command][record["outcome"]] += 1
        slowest[command] = max(slowest[command], record["seconds"])
    total = Counter()
    for counts in by_command.values():
        total.update(counts)
    lines = ["| command | " + " | ".join(HEAD) + " |", "|---" * (len(HEAD) + 1) + "|"]
    for command in sorted(by_command):
        cells = [str(by_command[command][c]) for c in COLUMNS] + [f"{slowest[command]:.1f}"]
        lines.append(f"| {command} | " + " | ".join(cells) + " |")
    worst = max(slowest.values(), default=0.0)
    cells = [f"**{total[c]}**" for c in COLUMNS] + [f"**{worst:.1f}**"]
    lines.append("| **all** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases", type=int, default=1000, help="mutated inputs on top of the corpus"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--limit", type=float, default=30.0, help="seconds before a case counts as a hang"
    )
    parser.add_argument(
        "--append", action="store_true", help="append the table to benchmarks/RESULTS.md"
    )
    parser.add_argument("--failures", type=Path, help="write every bad case as JSON lines here")
    parser.add_argument("--save", type=Path, help="write every case's record as JSON lines here")
    parser.add_argument(
        "--load", type=Path, help="report records saved by --save instead of running"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.cases, args.seed, args.limit, args.out, args.work)
        return
    began = time.perf_counter()
    if args.load:
        lines = args.load.read_text().splitlines()
        minutes = json.loads(lines[0])["minutes"]
        records = [json.loads(line) for line in lines[1:]]
    else:
        records = run_all(args.cases, args.seed, args.limit)
        minutes = (time.perf_counter() - began) / 60
    if args.save:
        args.save.write_text(
            "".join(json.dumps(r) + "\n" for r in [{"minutes": minutes}, *records])
        )
    text = table(records)
    print(text)
    bad = [
        r
        for r in records
        if r["outcome"] in ("traceback", "hang", "crash", "wrote", "noisy", "echoed", "unexpected")
    ]
    for record in bad[:40]:
        print(f"- {record['outcome']}: {record['name']}: {record['detail'][-300:]!r}")
    if args.failures:
        args.failures.write_text("".join(json.dumps(r) + "\n" for r in bad))
    if args.append:
        with (ROOT / "benchmarks" / "RESULTS.md").open("a") as handle:
            command = f"python benchmarks/fuzz.py --cases {args.cases} --seed {args.seed} --append"
            handle.write(
                f"\n## Fuzzing\n\n`{command}`: {len(records)} cases "
                f"({len(records) - args.cases} hand-made, {args.cases} mutated example files), "
                "each in-process through click's CliRunner or the Python API, "
                f"{args.limit:.0f} s bound, {minutes:.0f} min on a shared 2-core CPU.\n\n{text}\n"
            )


if __name__ == "__main__":
    main()
