"""``advisor auto`` at a quarter of random-20's compute, against random-20, on the regret datasets.

For every dataset of ``benchmarks/regret.py`` (same loaders, same seeded 20 % test
part that no method sees, same standardised regression targets):

* ``search``: the project's random search, 20 trials over the space the plan's
  search rules give (``budget.max_trials = 20``), then a run of its best plan;
  exactly regret.py's ``search`` method;
* ``auto``: ``advisor.auto`` on the train part with an examples budget of 1/4 of
  what the search trained, no test split of its own (the benchmark's test part
  is the test), its best round by validation scored on the test part.

Compute is **examples trained**: for every training (each search trial, the
search's final run, each auto round and each trial of auto's own searches) the
epochs it ran times its plan's n_train.  It does not depend on the machine's
load; wall-clock seconds are reported beside it and are noisy on a shared machine.
Regret is auto's relative shortfall on the test metric, positive = auto worse
(regret.py's sign), with a 1,000-resample bootstrap interval over the test rows.

    python benchmarks/auto_vs_random.py --only oj cps1985 seattle_weather
    python benchmarks/auto_vs_random.py --quick --share 3 --only cps1985   # smoke test
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

_SPEC = importlib.util.spec_from_file_location("regret", Path(__file__).with_name("regret.py"))
regret = importlib.util.module_from_spec(_SPEC)
sys.modules["regret"] = regret  # dataclasses look their module up while the file runs
_SPEC.loader.exec_module(regret)

SHARE = 0.25  # auto's examples budget, as a share of the search's


def examples_of(run_dir: Path) -> int:
    """Epochs a run trained times its plan's n_train."""
    history = json.loads((run_dir / "history.json").read_text())
    plan = json.loads((run_dir / "plan.json").read_text())
    return len(history["epochs"]) * int(plan["n_train"])


def prepared(name: str, quick: bool):
    """The regret benchmark's table, test split and standardised targets."""
    table = regret.DATASETS[name]()
    if quick:
        keep = np.random.default_rng(0).permutation(len(table.y))[:300]
        table = regret.Table(
            table.x[keep], table.y[keep], table.task, table.metric, table.modality, table.source
        )
    train_idx, test_idx = regret.test_split(table)
    if table.task == "regression":
        mean, spread = table.y[train_idx].mean(), table.y[train_idx].std()
        y = ((table.y - mean) / spread).astype(np.float32)
        table = regret.Table(table.x, y, table.task, table.metric, table.modality, table.source)
    return table, train_idx, test_idx


def random_20(name, npz: Path, work: Path, quick: bool, mode: str, x_test) -> dict:
    """regret.py's search method: 20 random trials, then a run of the best plan."""
    import advisor
    from advisor.contract.loading import load_plan

    cache = work / "search_cache.json"  # a finished search is measured once, then reused
    if cache.exists() and (work / "search_best" / "run.json").exists():
        kept = json.loads(cache.read_text())
        best = load_plan(work / "search_best" / "plan.json")
        return {**kept, "pred": regret.predict(work / "search_best", best, x_test)}
    trials = 3 if quick else regret.N_TRIALS
    searched = advisor.recommend(regret.profile_for(npz, name, quick, trials=trials))
    started = time.perf_counter()
    found = advisor.search(searched, out_dir=work / "search", mode=mode, progress=False)
    best = load_plan(found.best_plan)
    run = advisor.run(best, out_dir=work / "search_best")
    seconds = time.perf_counter() - started
    trained = sum(examples_of(h.parent) for h in (work / "search").glob("trials/*/history.json"))
    kept = {
        "seconds": seconds,
        "examples": trained + examples_of(Path(run.run_dir)),
        "trials": len(list((work / "search").glob("trials/*/history.json"))),
    }
    cache.write_text(json.dumps(kept) + "\n")
    return {**kept, "pred": regret.predict(Path(run.run_dir), best, x_test)}


def auto_method(npz: Path, work: Path, budget: int, x_test) -> dict:
    import advisor
    from advisor.contract.loading import load_plan

    shutil.rmtree(work / "auto", ignore_errors=True)  # a fresh lineage each time
    started = time.perf_counter()
    lineage = advisor.auto(
        str(npz),
        examples=budget,
        out_dir=work / "auto",
        test_fraction=0.0,
        progress=False,
        report=lambda line: print("   ", line, flush=True),
    )
    seconds = time.perf_counter() - started
    best = next((r for r in lineage.rounds if r.round == lineage.best_round), None)
    if best is None:
        raise SystemExit(f"auto ran no round within {budget:,} examples ({lineage.stopped})")
    plan = load_plan(Path(best.run_dir) / "plan.json")
    return {
        "pred": regret.predict(Path(best.run_dir), plan, x_test),
        "seconds": seconds,
        "examples": lineage.spent.examples,
        "runs": lineage.spent.runs,
        "rounds": [
            {
                "round": r.round,
                "kind": r.kind,
                "cause": r.cause,
                "score": r.score,
                "improved": r.improved,
                "changes": [c.field for c in r.changes],
                "step": [[c.field, c.old, c.new] for c in r.changes if c.field != "epochs"]
                if r.kind == "step"
                else None,
            }
            for r in lineage.rounds
        ],
        "best_round": lineage.best_round,
        "stopped": lineage.stopped,
        "metric": lineage.metric,
    }


def benchmark(name: str, root: Path, quick: bool, share: float = SHARE) -> dict:
    table, train_idx, test_idx = prepared(name, quick)
    work = root / name
    work.mkdir(parents=True, exist_ok=True)
    npz = work / "train.npz"
    np.savez(npz, x=table.x[train_idx], y=table.y[train_idx])
    x_test, y_test = table.x[test_idx], table.y[test_idx]
    mode = "sequential" if table.modality == "image" else "population"
    search = random_20(name, npz, work, quick, mode, x_test)
    budget = max(1, int(search["examples"] * share))
    auto = auto_method(npz, work, budget, x_test)
    s_score = regret.score(table.metric, y_test, search["pred"])
    a_score = regret.score(table.metric, y_test, auto["pred"])
    low, high = regret.bootstrap_interval(
        table.metric, y_test, auto["pred"], search["pred"], np.random.default_rng(0)
    )
    drop = {"pred"}
    return {
        "dataset": name,
        "holdout": name in regret.HOLDOUT,
        "metric": table.metric,
        "n_test": len(test_idx),
        "search": {**{k: v for k, v in search.items() if k not in drop}, "score": s_score},
        "auto": {
            **{k: v for k, v in auto.items() if k not in drop},
            "score": a_score,
            "budget_examples": budget,
        },
        "regret": regret.regret(table.metric, a_score, s_score),
        "ci95": [low, high],
        "examples_ratio": auto["examples"] / search["examples"],
        "seconds_ratio": auto["seconds"] / search["seconds"],
    }


def _story(row: dict) -> str:
    """The lineage in short: r1 recommended 0.84, r2 lr_too_high 0.85*, r3 search 0.85."""
    parts = []
    for r in row["auto"]["rounds"]:
        label = r["kind"] if r["kind"] in ("recommended", "start", "search") else r["cause"]
        if r["kind"] == "step" and r.get("step"):
            label = ", ".join(f"{f.split('.')[-1]} {o:.3g}->{n:.3g}" for f, o, n in r["step"])
        score = "-" if r["score"] is None else f"{r['score']:.3f}"
        best = "*" if r["round"] == row["auto"]["best_round"] else ""
        parts.append(f"{label} {score}{best}")
    return "; ".join(parts)


def report(rows: dict) -> str:
    lines = []
    for title, holdout in (("Tuned datasets", False), ("Holdout datasets", True)):
        part = [r for r in rows.values() if r["holdout"] == holdout]
        if not part:
            continue
        lines += [
            f"#### {title}",
            "",
            "| dataset | metric | random-20 | auto | regret of auto [95% CI] "
            "| examples auto/search | seconds auto/search "
            "| rounds (kind or cause, val score, * = chosen) | stopped |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in part:
            lines.append(
                f"| {r['dataset']} | {r['metric']} | {r['search']['score']:.4f} | "
                f"{r['auto']['score']:.4f} | {r['regret'] * 100:+.1f}% "
                f"[{r['ci95'][0] * 100:+.1f}, {r['ci95'][1] * 100:+.1f}] | "
                f"{r['examples_ratio']:.3f} | {r['seconds_ratio']:.2f} | {_story(r)} | "
                f"{r['auto']['stopped']} |"
            )
        regrets = [r["regret"] for r in part]
        wins = sum(x < 0 for x in regrets)
        ties = sum(x == 0 for x in regrets)
        lines += [
            "",
            f"median regret of auto vs random-20: {float(np.median(regrets)) * 100:+.1f}% "
            f"(auto better on {wins}, equal on {ties}, worse on {len(part) - wins - ties} of "
            f"{len(part)}); median examples ratio "
            f"{float(np.median([r['examples_ratio'] for r in part])):.3f}, median seconds ratio "
            f"{float(np.median([r['seconds_ratio'] for r in part])):.2f}",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(regret.DATASETS), help="datasets")
    parser.add_argument("--quick", action="store_true", help="300 rows, 3 epochs, 3 trials")
    parser.add_argument("--out", type=Path, default=Path("runs/auto_vs_random"), help="work folder")
    parser.add_argument("--report", action="store_true", help="only print the saved results")
    parser.add_argument(
        "--share", type=float, default=SHARE, help="auto's budget, a share of the search's examples"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "results.json"
    rows = json.loads(results_file.read_text()) if results_file.exists() else {}
    for name in [] if args.report else args.only or list(regret.DATASETS):
        started = time.perf_counter()
        rows[name] = benchmark(name, args.out, args.quick, args.share)
        results_file.write_text(json.dumps(rows, indent=2, default=_json) + "\n")
        print(f"{name}: done in {time.perf_counter() - started:.0f} s", flush=True)
    print(report(rows))
    return 0


def _json(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON: {value!r}")


if __name__ == "__main__":
    raise SystemExit(main())
