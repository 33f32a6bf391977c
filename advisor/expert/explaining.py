"""Why a plan is what it is, for people: explanations looked up and rendered.

``explain(plan, field)`` finds the explanations of a plan (all, one field, a
group such as ``optimizer``, or a derived fact such as ``size_class``).
``plan_text``, ``explanations_text`` and ``rules_text`` render them as plain text;
``advisor.cli.render`` prints them (tables with colour on a terminal).  Building the
explanations is ``advisor.expert.recommending``'s job; nothing here decides anything.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from advisor.contract.errors import InputError
from advisor.contract.loading import load_plan
from advisor.contract.plan_paths import parents
from advisor.contract.schemas import Explanation, Plan

# Summary groups, by plan path prefix; the longest matching prefix decides.
GROUPS: dict[str, tuple[str, ...]] = {
    "data": (
        "name",
        "task",
        "modality",
        "input_shape",
        "n_train",
        "n_classes",
        "class_mode",
        "data",
    ),
    "model": ("model",),
    "loss": ("loss", "metrics"),
    "optimizer and schedule": ("optimizer", "schedule", "batch_size", "epochs", "steps_per_epoch"),
    "regularization": ("regularization", "model.dropout", "optimizer.weight_decay"),
    "transfer": ("freeze", "model.base"),
    "search": ("search",),
    "run": ("seed", "precision", "device", "output_dir"),
}


# ----------------------------------------------------------------------------- lookup


def explain(plan: Plan | dict | str | Path, field: str | None = None) -> dict[str, Explanation]:
    """The explanations of ``plan``, or of one field, group of fields or derived fact.

    Args:
        plan: a Plan, a dict, or the path of a plan JSON file.
        field: a plan path (``optimizer.learning_rate``), a prefix that names a
            group of them (``optimizer``), a part of an explained value
            (``loss.params.gamma``), or a derived fact (``size_class``);
            None for every plan field.

    Raises:
        InputError: the plan is invalid, or ``field`` has no explanation
            (with the closest explained name as a suggestion).

    Example:
        >>> from advisor.expert.recommending import recommend
        >>> plan = recommend({"task": "regression", "modality": "tabular",
        ...                   "n_train": 100, "input_shape": [5]})
        >>> explain(plan, "loss.name")["loss.name"].rule
        'loss_regression_mse'
    """
    loaded = load_plan(plan)
    if field is None:
        return dict(loaded.explanations)
    if not isinstance(field, str):
        raise InputError(
            f"field: got a {type(field).__name__}; expected a plan path such as loss.name"
        )
    known = {**loaded.derived_facts, **loaded.explanations}
    if field in known:
        return {field: known[field]}
    below = {path: e for path, e in loaded.explanations.items() if path.startswith(field + ".")}
    if below:
        return below
    for parent in reversed(parents(field)):
        if parent in loaded.explanations:
            return {parent: loaded.explanations[parent]}
    label = str(plan) if isinstance(plan, (str, Path)) else "plan"
    groups = {path.rpartition(".")[0] for path in loaded.explanations} - {""}
    close = _siblings_starting_with(field, known) or difflib.get_close_matches(
        field, sorted({*known, *groups}), n=1, cutoff=0.6
    )
    hint = (
        f"did you mean {close[0]!r}?"
        if close
        else "`advisor explain PLAN` lists every explained field"
    )
    shown = field if len(field) <= 60 else field[:57] + "..."
    raise InputError(f"{label}: {shown!r} has no explanation in this plan; {hint}")


def _abbreviates(short: str, name: str) -> bool:
    """``lr`` abbreviates ``learning_rate``: same first letter, the rest in order."""
    if not short or not name.startswith(short[0]):
        return False
    rest = iter(name)
    return all(char in rest for char in short)


def _siblings_starting_with(field: str, known: Iterable[str]) -> list[str]:
    """``optimizer.lr`` -> ``[optimizer.learning_rate]``: the one sibling the last part abbreviates."""
    parent, _, last = field.rpartition(".")
    found = [
        k
        for k in sorted(known)
        if k.rpartition(".")[0] == parent and _abbreviates(last, k.rpartition(".")[2])
    ]
    return found[:1] if len(found) == 1 else []


def group_of(path: str) -> str:
    """The summary group a plan path belongs to (the longest matching prefix wins)."""
    best, best_len = "run", -1
    for group, prefixes in GROUPS.items():
        for prefix in prefixes:
            if (path == prefix or path.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = group, len(prefix)
    return best


def show_value(value: Any) -> str:
    """A compact one-line rendering of a plan value."""
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, dict) and {"name", "strength"} <= set(v) for v in value)
    ):
        return ", ".join(f"{v['name']}({v['strength']:g})" for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if v is not None}
    return json.dumps(value, separators=(", ", ": "), default=str)


# ----------------------------------------------------------------------------- text


def plan_text(plan: Plan) -> str:
    """The plan summary as plain text: derived facts, then each group's fields with reasons."""
    lines = [headline(plan), ""]
    if plan.derived_facts:
        lines.append("What the rules concluded about the problem")
        lines += _entries(plan.derived_facts.items())
        lines.append("")
    for group, items in grouped(plan).items():
        lines.append(group[0].upper() + group[1:])
        lines += _entries(items)
        lines.append("")
    lines.append(
        "`advisor explain PLAN FIELD` shows the evidence and the rules each value overrode."
    )
    return "\n".join(lines)


def explanation_rows(path: str, e: Explanation) -> list[tuple[str, str]]:
    """An explanation as (label, text) rows: the value, rule, reason, source, evidence, losers."""
    rows = [(path, show_value(e.value)), ("rule", e.rule), ("why", e.reason), ("source", e.source)]
    if e.matched:
        rows.append(("matched", ", ".join(f"{k}={show_value(v)}" for k, v in e.matched.items())))
    for loser in e.overridden:
        rows.append(
            (
                "won over",
                f"[{loser.rule}] (priority {loser.priority}), which wanted {show_value(loser.value)}: {loser.reason}",
            )
        )
    return rows


def explanations_text(explanations: dict[str, Explanation]) -> str:
    """Each explanation in full: value, rule, reason, source, matched facts, losers."""
    blocks = []
    for path, e in explanations.items():
        (_, value), *rest = explanation_rows(path, e)
        lines = [f"{path} = {value}"] + [f"  {label + ':':<8} {text}" for label, text in rest]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def show_rule_value(value: Any) -> str:
    """A rule's conclusion as written: literals as values, expressions as formulas."""
    from advisor.expert.rules import is_expression

    if is_expression(value):
        ((op, args),) = value.items()
        if op == "from":
            return str(args)
        args = args if isinstance(args, list) else [args]
        return f"{op}(" + ", ".join(show_rule_value(a) for a in args) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show_rule_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[" + ", ".join(show_rule_value(v) for v in value) + "]"
    return show_value(value)


def conclusions(rule: Any) -> str:
    conclusions = {**rule.infer, **rule.recommend}
    if rule.diagnose is not None:
        conclusions["problem"] = rule.diagnose.problem
    return ", ".join(f"{k} = {show_rule_value(v)}" for k, v in conclusions.items())


def rules_text(rules: Iterable[Any]) -> str:
    """Every rule: id, file, priority, conditions, conclusions and reason."""
    blocks = []
    for rule in rules:
        lines = [
            f"[{rule.id}]  ({rule.file}, {rule.domain}, priority {rule.priority})",
            f"  when: {rule.describe_when()}",
            f"  then: {conclusions(rule)}",
            f"  why:  {rule.reason}",
            f"  from: {rule.source}",
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def headline(plan: Plan) -> str:
    name = f"{plan.name!r}: " if plan.name else ""
    classes = f", {plan.n_classes} classes" if plan.n_classes else ""
    return (
        f"Training plan for {name}{plan.task}, {plan.modality} input "
        f"{tuple(plan.input_shape)}, {plan.n_train} training examples{classes}"
    )


def grouped(plan: Plan) -> dict[str, list[tuple[str, Explanation]]]:
    out: dict[str, list[tuple[str, Explanation]]] = {group: [] for group in GROUPS}
    for path, e in plan.explanations.items():
        out[group_of(path)].append((path, e))
    return {group: items for group, items in out.items() if items}


def _entries(items: Iterable[tuple[str, Explanation]]) -> list[str]:
    return [f"  {path} = {show_value(e.value)}\n      {e.reason} [{e.rule}]" for path, e in items]
