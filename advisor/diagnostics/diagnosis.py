"""Diagnose a training history, and revise the plan that produced it.

``diagnose(history, plan)`` reads the history (any format ``advisor.readers``
knows), measures its curve features once (``advisor.diagnostics.curves``), and runs the
rules of the ``diagnose`` domain over them: ``rules/50_*.toml`` name the
problems, ``rules/60_*.toml`` fix the plan.  The initial facts are the
features and, given a plan, the plan flattened to ``plan.*`` facts; problems
become ``problem.*`` facts for the fixes.  ``revise_plan`` returns the next
plan too (``advisor.expert.revision`` builds it).  ``render`` gives a diagnosis in a
few lines (``advisor.cli`` prints them and holds the ``advisor diagnose`` body).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from advisor.contract.errors import suggest
from advisor.contract.io import write_model
from advisor.contract.plan_paths import flatten, is_plan_path
from advisor.contract.schemas import Diagnosis, History, Plan
from advisor.contract.vocabulary import FACTS, PROBLEMS
from advisor.diagnostics.curves import curve_features
from advisor.diagnostics.measure_thresholds import thresholds_of
from advisor.expert.inference import infer
from advisor.expert.revision import (
    advice_from,
    fixes_from,
    problems_from,
    revised_plan,
    round_value,
)
from advisor.expert.rules import Rule, load_rules
from advisor.readers import load_history

_PLAN_EXCLUDE = {"explanations", "derived_facts"}


def diagnose(
    history: History | dict | str | Path,
    plan: Plan | dict | str | Path | None = None,
    rules_dirs: list[str | Path] | None = None,
) -> Diagnosis:
    """What went wrong in a training run (or that nothing did), with the numbers that show it.

    Args:
        history: a History, a dict (native or Keras ``history.history``) or a file/folder path.
        plan: the plan that produced the history; with it the diagnosis also lists fixes.
        rules_dirs: extra rule files or folders, added to the built-in knowledge base.

    Raises:
        InputError: the history or plan cannot be read.

    Example:
        >>> d = diagnose({"loss": [2.3, 1.2, 0.6, 0.35, 0.25, 0.2, 0.18, 0.17, 0.165, 0.163],
        ...               "val_loss": [2.3, 1.3, 0.8, 0.7, 0.75, 0.85, 0.95, 1.05, 1.15, 1.25]})
        >>> [p.name for p in d.problems]
        ['overfitting']
    """
    return _run(history, plan, rules_dirs)[0]


def revise_plan(
    history: History | dict | str | Path,
    plan: Plan | dict | str | Path,
    rules_dirs: list[str | Path] | None = None,
) -> tuple[Diagnosis, Plan]:
    """The diagnosis and the next plan: the old one with the fixes applied and explained.

    Raises:
        InputError: the history or plan cannot be read.
    """
    diagnosis, next_plan = _run(history, plan, rules_dirs)
    assert next_plan is not None  # a plan was given
    return diagnosis, next_plan


def write_diagnosis(run_dir: Path, history: History, plan: Plan) -> tuple[str, str]:
    """diagnosis.json and next_plan.json in a run folder; the engine's ``diagnose`` hook."""
    diagnosis, next_plan = revise_plan(history, plan)
    write_model(run_dir / "diagnosis.json", diagnosis)
    write_model(run_dir / "next_plan.json", next_plan)
    return str(run_dir / "diagnosis.json"), str(run_dir / "next_plan.json")


def _run(history, plan, rules_dirs) -> tuple[Diagnosis, Plan | None]:
    from advisor.contract.loading import load_plan

    history = load_history(history)
    plan = load_plan(plan) if plan is not None else None
    rules = diagnosis_rules(tuple(str(d) for d in rules_dirs or ()))
    features = features_of(history, plan, thresholds_of(rules))
    history = _note_never_computed(history, features)
    facts = dict(features)
    if plan is not None:
        facts.update(plan_facts(plan))
    else:
        rules = [rule for rule in rules if not rule.recommend]  # fixes need a plan
    inference = infer(facts, rules)
    fixes = fixes_from(inference, plan) if plan is not None else []
    diagnosis = Diagnosis(
        history=history.source,
        primary=inference.facts.get("diagnosis.primary"),
        problems=problems_from(inference),
        features={k: round_value(v, 6) for k, v in sorted(features.items())},
        fixes=fixes,
        advice=advice_from(inference),
        n_epochs=len(history.epochs),
    )
    next_plan = revised_plan(plan, fixes, inference) if plan is not None else None
    return diagnosis, next_plan


def features_of(
    history: History, plan: Plan | None, thresholds: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """Curve features, with the task, classes, loss, planned epochs and (for an MLP with
    hidden layers) the hidden width taken from the plan; ``thresholds`` are the rules'
    threshold values (the built-in ones when None)."""
    if plan is None:
        return curve_features(history, thresholds=thresholds)
    model = plan.model
    mlp_width = model.units if model.arch == "mlp" and model.hidden_layers else None
    return curve_features(
        history,
        task=plan.task,
        n_classes=plan.n_classes,
        loss_name=plan.loss.name,
        planned_epochs=plan.epochs,
        hidden_width=mlp_width,
        thresholds=thresholds,
    )


def _note_never_computed(history: History, features: dict[str, Any]) -> History:
    """The history with a note naming the series left out as never computed."""
    dropped = features.get("curve.never_computed")
    if not dropped:
        return history
    note = f"left out {dropped}: NaN, empty or zero at every epoch (never computed)"
    source = history.source.model_copy(update={"notes": [note, *history.source.notes]})
    return history.model_copy(update={"source": source})


def plan_facts(plan: Plan) -> dict[str, Any]:
    """The plan as ``plan.<path>`` facts, the way fix rules read and rewrite it, plus
    ``before.*`` copies of the fields whose fixes would otherwise chain (full fine-tuning
    -> partial -> frozen base in one diagnosis; a dropout fix read back as "cures spent")."""
    facts = flatten("plan", plan.model_dump(mode="json", exclude=_PLAN_EXCLUDE))
    facts["before.freeze.strategy"] = plan.freeze.strategy
    facts["before.freeze.trainable_blocks"] = plan.freeze.trainable_blocks
    facts["before.model.dropout"] = plan.model.dropout
    facts["before.batch_size"] = plan.batch_size
    stop = plan.regularization.early_stopping
    facts["before.regularization.early_stopping.restore_best"] = stop.restore_best if stop else None
    return facts


@lru_cache(maxsize=8)
def diagnosis_rules(rules_dirs: tuple[str, ...] = ()) -> list[Rule]:
    """The ``diagnose``-domain rules: built-in plus extra files or folders."""
    rules = load_rules(list(rules_dirs), domain="diagnose")
    return [rule for rule in rules if rule.domain == "diagnose"]


def example_facts(example: dict[str, Any]) -> dict[str, Any]:
    """Initial facts from a diagnose rule's ``example``: curve features and plan values.

    Keys are declared fact names (``curve.*``, ``threshold.*``), ``plan.<path>``
    values or ``problem.<name>`` flags.  A ``series`` table (name -> values,
    with optional ``task`` and ``n_classes``) is measured as a history first.

    Raises:
        ValueError: a key names no known fact.
    """
    example = dict(example)
    facts: dict[str, Any] = {}
    series = example.pop("series", None)
    task, n_classes = example.pop("task", None), example.pop("n_classes", None)
    if series is not None:
        history = load_history(series).model_copy(update={"task": task, "n_classes": n_classes})
        facts.update(curve_features(history))
    for key, value in example.items():
        known = (
            key in FACTS
            or (key.startswith("plan.") and is_plan_path(key.removeprefix("plan.")))
            or (key.startswith("problem.") and key.removeprefix("problem.") in PROBLEMS)
        )
        if not known:
            curve_names = [name for name in FACTS if name.startswith(("curve.", "threshold."))]
            raise ValueError(f"example key {key!r} is not a fact; {suggest(key, curve_names)}")
        facts[key] = value
    return facts


# ----------------------------------------------------------------------------- output


def render(diagnosis: Diagnosis, next_plan: str | Path | None = None) -> list[str]:
    """The diagnosis in a few readable lines (no markup)."""
    source = diagnosis.history
    where = source.path or "history"
    names = ", ".join(p.name for p in diagnosis.problems) or "nothing to judge"
    if diagnosis.primary is not None and len(diagnosis.problems) > 1:
        names = f"{diagnosis.primary} (first); all: {names}"
    lines = [f"{where} ({source.format}, {diagnosis.n_epochs} epochs): {names}"]
    for problem in diagnosis.problems:
        span = f" epochs {problem.epochs[0]}-{problem.epochs[1]}" if problem.epochs else ""
        lines.append(f"  {problem.name} [{problem.severity}]{span}: {problem.reason}")
        shown = [
            f"{k.removeprefix('curve.')} {v}"
            for k, v in problem.evidence.items()
            if not k.startswith("threshold.")
        ][:4]
        if shown:
            lines.append("      " + " | ".join(shown))
    if diagnosis.fixes:
        target = f" -> {next_plan}" if next_plan else ""
        lines.append(f"  fixes{target}:")
        for fix in diagnosis.fixes:
            lines.append(
                f"      {fix.field}: {_short(fix.old)} -> {_short(fix.new)}"
                f"  ({fix.problem}, {fix.rule})"
            )
    for advice in diagnosis.advice:
        lines.append(f"  advice ({advice.problem or 'general'}): {advice.reason}")
    for note in source.notes[:3]:
        lines.append(f"  read: {note}")
    for skipped in source.skipped[:3]:
        lines.append(f"  skipped: {skipped}")
    if len(source.skipped) > 3:
        lines.append(f"  skipped: ... and {len(source.skipped) - 3} more")
    return lines


def _short(value: Any) -> str:
    text = str(round_value(value)) if not isinstance(value, (dict, list)) else _compact(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"), default=str)
