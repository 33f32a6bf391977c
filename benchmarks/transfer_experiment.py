"""Does the lecture's transfer decision framework pick the best strategy?  Every strategy, every quadrant.

    python benchmarks/transfer_experiment.py                  # 3 seeds, the example quadrants (~40 min, 2 CPU cores)
    python benchmarks/transfer_experiment.py --seeds 1 --quick  # a smoke run

1. The source task is the example base: a CNN trained on digits 0-4
   (``examples/bases/digits_0to4.json``, built by ``advisor pretrain`` if missing).
2. Four target tasks, one per quadrant of the framework: digits 5-9 (disjoint
   classes of the same domain) and generated shapes (another domain), each with
   all its training examples ("large", >= 100 per class) or 100 of them ("small").
   Each target is profiled by ``advisor profile --base``, so the size and the
   *measured* similarity decide the quadrant, and ``advisor recommend`` gives
   the strategy the lecture's framework picks.
3. Every strategy is then trained on every quadrant, each with the plan the
   advisor writes for that strategy (its learning rate, augmentation, head and
   early stopping follow the strategy, as the rules set them: an extra rule
   file of priority 100 forces the strategy), for each seed (initialisation,
   shuffling, validation split and subsample all change with it).
4. Two more columns keep the framework's choice as the first stage and then
   train every layer at the full rate, lower blocks slower (``two_stage``
   with ``fine_tune_lr_factor`` 1 and ``layer_lr_decay`` 0.38, its first stage
   the head alone or partial fine-tuning): the refinements the rules make
   where the six strategies contradicted the framework.
5. The table: validation accuracy (mean ± std over seeds, at the epoch early
   stopping restored), wall-clock seconds per run (data, compile, training,
   writing the run directory), and whether the lecture's choice and the
   advisor's (refined) choice are the best or within one standard deviation of
   the best (best mean - its mean <= the larger of the two standard deviations).

``--json`` keeps every run's numbers; ``--markdown`` prints the table for
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STRATEGIES = (
    "from_scratch",
    "full_fine_tune",
    "partial_fine_tune",
    "freeze_base",
    "feature_extractor",
    "two_stage",
)
# The strategy-specific fields the recommend rules do not set on their own for a forced strategy.
FORCED_FIELDS = {
    "partial_fine_tune": {"freeze.trainable_blocks": 1},
    "two_stage": {"freeze.fine_tune_lr_factor": 0.1, "freeze.layer_lr_decay": 0.38},
}


@dataclass(frozen=True)
class Variant:
    """A column of the table: a label and the plan fields the forcing rule sets (the strategy included)."""

    label: str
    fields: dict


def strategy_variant(strategy: str) -> Variant:
    """The plain strategy, with the fields it needs at the values the rules use elsewhere."""
    return Variant(strategy, {"freeze.strategy": strategy, **FORCED_FIELDS.get(strategy, {})})


# The framework's choice kept as the first stage, then every layer at the full rate, lower blocks
# slower (the refinements rules/40_transfer.toml makes where the six strategies contradicted it).
REFINED = (
    Variant(
        "freeze_base, then all",
        {
            "freeze.strategy": "two_stage",
            "freeze.fine_tune_lr_factor": 1.0,
            "freeze.layer_lr_decay": 0.38,
        },
    ),
    Variant(
        "partial, then all",
        {
            "freeze.strategy": "two_stage",
            "freeze.trainable_blocks": 1,
            "freeze.fine_tune_lr_factor": 1.0,
            "freeze.layer_lr_decay": 0.38,
        },
    ),
)
VARIANTS = tuple(strategy_variant(s) for s in STRATEGIES) + REFINED
# The lecture's decision framework (section 9.2), quadrant -> strategy.
LECTURE = {
    "large_similar": "freeze_base",
    "large_different": "from_scratch",
    "small_similar": "feature_extractor",
    "small_different": "partial_fine_tune",
}


@dataclass(frozen=True)
class Quadrant:
    """One target task: its name, its data source (command-line form) and profile options."""

    name: str
    data: str
    options: dict = field(default_factory=dict)


QUADRANTS = (
    Quadrant("large_similar", "builtin:digits", {"classes": [5, 6, 7, 8, 9]}),
    Quadrant("large_different", "builtin:shapes", {"n_samples": 1200, "image_size": (8, 8)}),
    Quadrant("small_similar", "builtin:digits", {"classes": [5, 6, 7, 8, 9], "subsample": 100}),
    Quadrant(
        "small_different",
        "builtin:shapes",
        {"n_samples": 1200, "image_size": (8, 8), "subsample": 100},
    ),
)


@dataclass
class Cell:
    """One quadrant x strategy: a run per seed."""

    quadrant: str
    strategy: str
    accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracy)

    @property
    def std(self) -> float:
        return statistics.stdev(self.accuracy) if len(self.accuracy) > 1 else 0.0


def forced_rule(variant: Variant) -> str:
    """A rule file that makes the advisor plan for ``variant`` (everything else as its rules say)."""
    shown = ", ".join(f'"{k}" = {json.dumps(v)}' for k, v in variant.fields.items())
    return (
        "[experiment_force_strategy]\n"
        'when = [{ fact = "has_pretrained", eq = true }]\n'
        f"recommend = {{ {shown} }}\n"
        "priority = 100\n"
        'reason = "The transfer experiment trains every strategy on every quadrant."\n'
        'source = "benchmarks/transfer_experiment.py"\n'
    )


def quadrant_profile(quadrant: Quadrant, base: str, epochs: int | None = None):
    """The target's profile, measured against the base as ``advisor profile --base`` does."""
    from advisor.workflows.profiling import parse_source, profile_data

    source = parse_source(quadrant.data, **quadrant.options)
    profile = profile_data(source, base=base, name=quadrant.name)
    if epochs is not None:  # a budget caps the rules' epochs (the --quick smoke run)
        from advisor.contract.schemas import Profile

        profile = Profile.model_validate({**profile.model_dump(), "budget": {"max_epochs": epochs}})
    return profile


def variant_freeze(variant: Variant, head_epochs: int | None):
    """The freeze section of ``variant`` exactly: fields it does not name are unset, so a field
    another rule set for the quadrant (a refinement's trainable_blocks, say) cannot leak in."""
    from advisor.contract.schemas import FreezePlan

    named = {
        k.removeprefix("freeze."): v for k, v in variant.fields.items() if k.startswith("freeze.")
    }
    two_stage = named["strategy"] == "two_stage"
    return FreezePlan(**named, head_epochs=head_epochs if two_stage else None)


def plan_for(profile, variant: Variant, seed: int, rules_dir: Path):
    """The advisor's plan for ``profile`` trained as ``variant`` says, at ``seed``."""
    from advisor.expert.recommending import recommend

    rule_file = rules_dir / f"force_{variant.label}.toml"
    rule_file.write_text(forced_rule(variant))
    plan = recommend(profile, rules_dirs=[rule_file])
    data = plan.data.model_copy(update={"split_seed": seed})
    freeze = variant_freeze(variant, plan.freeze.head_epochs)
    return plan.model_copy(update={"seed": seed, "data": data, "freeze": freeze})


def run_cell(plan, out_dir: Path) -> tuple[float, float, int]:
    """(validation accuracy at the restored epoch, wall seconds, epochs trained) of one run."""
    from advisor.workflows.running import run

    started = time.perf_counter()
    result = run(plan, out_dir=out_dir)
    seconds = time.perf_counter() - started
    history = json.loads(Path(result.history).read_text())
    return result.metrics["val_accuracy"], seconds, len(history["epochs"])


def run_experiment(
    base: str,
    quadrants=QUADRANTS,
    variants=VARIANTS,
    seeds=(0, 1, 2),
    epochs: int | None = None,
    work: Path | None = None,
    report=print,
) -> dict:
    """Train every strategy on every quadrant for every seed; the advisor's choices and all the cells.

    Args:
        base: the source task's checkpoint directory.
        epochs: a budget that caps every plan's epochs (None: the plans' own).
        work: where the run directories go (default: a temporary folder).
    """
    work = Path(work or tempfile.mkdtemp(prefix="transfer-experiment-"))
    rules_dir = work / "rules"
    rules_dir.mkdir(parents=True, exist_ok=True)
    out = {"base": base, "seeds": list(seeds), "quadrants": {}, "cells": []}
    from advisor.expert.recommending import recommend

    for quadrant in quadrants:
        profile = quadrant_profile(quadrant, base, epochs)
        advice = recommend(profile)
        out["quadrants"][quadrant.name] = {
            "n_train": profile.n_train,
            "similarity": profile.pretrained.similarity,
            "measured_quadrant": advice.derived_facts["transfer_quadrant"].value,
            "advised": advised_label(advice, variants),
        }
        for variant in variants:
            cell = Cell(quadrant.name, variant.label)
            for seed in seeds:
                plan = plan_for(profile, variant, seed, rules_dir)
                accuracy, seconds, n_epochs = run_cell(
                    plan, work / f"{quadrant.name}-{variant.label}-{seed}"
                )
                cell.accuracy.append(accuracy)
                cell.seconds.append(seconds)
                cell.epochs.append(n_epochs)
                report(
                    f"{quadrant.name:16s} {variant.label:18s} seed {seed}: val_accuracy {accuracy:.4f} "
                    f"({n_epochs} epochs, {seconds:.1f} s)"
                )
            out["cells"].append(cell)
    return out


def advised_label(plan, variants) -> str:
    """The column the advisor's own plan falls in: the variant with exactly its freeze section."""
    for variant in variants:
        if variant_freeze(variant, plan.freeze.head_epochs) == plan.freeze:
            return variant.label
    return f"{plan.freeze.strategy} (no column)"


def verdict(cells: list[Cell], chosen_label: str) -> tuple[Cell, bool | None]:
    """The best cell of a quadrant, and whether the chosen one is it or within one std of it
    (None when the chosen strategy has no column)."""
    best = max(cells, key=lambda c: c.mean)
    chosen = next((c for c in cells if c.strategy == chosen_label), None)
    if chosen is None:
        return best, None
    return best, best.mean - chosen.mean <= max(best.std, chosen.std)


def _holds(best: Cell, holds: bool | None) -> str:
    return {True: "yes", False: f"no ({best.strategy} better)", None: "not run"}[holds]


def markdown(result: dict) -> str:
    """The RESULTS.md table: one row per quadrant, one column per strategy (or variant)."""
    labels = list(dict.fromkeys(c.strategy for c in result["cells"]))
    header = (
        "| quadrant (n_train, similarity) | "
        + " | ".join(labels)
        + " | lecture's choice: holds? | advisor's choice: holds? |"
    )
    lines = [header, "|" + "---|" * (len(labels) + 3)]
    for name, info in result["quadrants"].items():
        cells = [c for c in result["cells"] if c.quadrant == name]
        by_strategy = {c.strategy: c for c in cells}
        best, holds = verdict(cells, info["advised"])
        lecture = LECTURE[info["measured_quadrant"]]
        _, lecture_holds = verdict(cells, lecture)
        shown = []
        for label in labels:
            c = by_strategy.get(label)
            if c is None:
                shown.append("—")
                continue
            text = f"{c.mean:.3f} ± {c.std:.3f} ({statistics.fmean(c.seconds):.0f} s)"
            shown.append(f"**{text}**" if c is best else text)
        label = (
            name
            if info["measured_quadrant"] == name
            else f"{name} (measured: {info['measured_quadrant']})"
        )
        lines.append(
            f"| {label} ({info['n_train']}, {info['similarity']:.2f}) | "
            + " | ".join(shown)
            + f" | {lecture}: {_holds(best, lecture_holds)} | {info['advised']}: {_holds(best, holds)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per cell (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="cap every plan at 3 epochs (a smoke run)"
    )
    parser.add_argument("--base-plan", type=Path, default=ROOT / "examples/bases/digits_0to4.json")
    parser.add_argument("--json", type=Path, help="write every run's numbers here")
    parser.add_argument(
        "--work", type=Path, help="keep the run directories here (default: a temporary folder)"
    )
    args = parser.parse_args(argv)
    import os

    os.chdir(ROOT)  # the bases and their plans name paths relative to the repository root
    from advisor.contract.loading import load_plan
    from advisor.workflows.bases import pretrain

    pretrain([args.base_plan])
    result = run_experiment(
        load_plan(args.base_plan).output_dir,
        seeds=tuple(range(args.seeds)),
        epochs=3 if args.quick else None,
        work=args.work,
    )
    if args.json:
        serial = {**result, "cells": [asdict(c) for c in result["cells"]]}
        args.json.write_text(json.dumps(serial, indent=2) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
