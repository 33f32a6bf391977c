"""From an inference over the diagnosis rules to Problems, Fixes, Advice and the next Plan.

The revised plan is the old plan with exactly the fixed fields changed; each
fixed field's explanation is replaced by the fix rule's (its reason, source,
the facts it matched and the fixes it overrode), so ``advisor explain
next_plan.json FIELD`` says why the value changed.  Explanations of sub-fields
of a replaced field (``regularization.early_stopping.patience`` under a new
``regularization.early_stopping``) are dropped with the value they explained.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Collection
from typing import Any

from pydantic import ValidationError

from advisor.contract.errors import RuleError
from advisor.contract.io import describe_validation_error
from advisor.contract.plan_paths import get_path, set_path
from advisor.contract.schemas import Advice, Explanation, Fix, Overridden, Plan, Problem
from advisor.contract.vocabulary import PROBLEMS
from advisor.expert.inference import Derivation, Finding, Inference

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def problems_from(inference: Inference) -> list[Problem]:
    """One Problem per finding, the most severe first."""
    problems = [_problem(finding) for finding in inference.findings.values()]
    ranks = {f.problem: f.rule.rank for f in inference.findings.values()}
    return sorted(
        problems, key=lambda p: (_SEVERITY_ORDER[p.severity], tuple(-x for x in ranks[p.name][:2]))
    )


def _problem(finding: Finding) -> Problem:
    evidence = {k: round_value(v) for k, v in finding.evidence.items() if v is not None}
    for name, value in finding.matched.items():
        if value is not None and not name.startswith("problem."):
            evidence.setdefault(name, round_value(value))
    epochs = None
    if finding.epochs and all(
        isinstance(e, int) and not isinstance(e, bool) for e in finding.epochs
    ):
        epochs = (finding.epochs[0], finding.epochs[1])
    return Problem(
        name=finding.problem,
        severity=finding.severity,
        epochs=epochs,
        evidence=evidence,
        rule=finding.rule.id,
        reason=finding.rule.reason,
        source=finding.rule.source,
    )


def round_value(value: Any, digits: int = 4) -> Any:
    """Floats to ``digits`` significant digits, for evidence a person reads."""
    if isinstance(value, float) and math.isfinite(value) and value != 0:
        return float(f"{value:.{digits}g}")
    return value


def treated_problem(derivation: Derivation, found: Collection[str] = ()) -> str | None:
    """The problem a fix rule treats: a ``problem.*`` fact its conditions require to be true.

    A rule may treat any of several problems (an ``any`` group); then the first of them
    that was ``found`` is named, else the first it names.
    """
    named = [name for cond in derivation.rule.when for name in _problems_required(cond)]
    return next((n for n in named if n in found), named[0] if named else None)


def _problems_required(cond: Any) -> list[str]:
    if cond.op == "any":
        return [name for child in cond.children for name in _problems_required(child)]
    if cond.op == "eq" and cond.fact and cond.fact.startswith("problem.") and cond.value is True:
        return [cond.fact.removeprefix("problem.")]
    return []


def fixes_from(inference: Inference, plan: Plan) -> list[Fix]:
    """Every plan field the fix rules changed, with its old and its final new value.

    A field and one of its sub-fields may both be fixed (a new early-stopping
    table, then its patience); the parent's ``new`` shows the table as it ends up.
    """
    old = plan.model_dump(mode="json")
    derivations = inference.plan_fields()
    applied = copy.deepcopy(old)
    for path in sorted(derivations, key=lambda p: p.count(".")):
        set_path(applied, path, copy.deepcopy(derivations[path].value))
    fixes = []
    for path, derivation in sorted(derivations.items()):
        before, after = get_path(old, path, None), get_path(applied, path, None)
        if before == after:
            continue
        problem = treated_problem(derivation, inference.findings) or _problem_served(inference)
        fixes.append(
            Fix(
                field=path,
                old=before,
                new=after,
                problem=problem,
                rule=derivation.rule.id,
                reason=derivation.rule.reason,
                source=derivation.rule.source,
            )
        )
    return fixes


def _problem_served(inference: Inference) -> str:
    """A fix that names no problem (steps per epoch following the batch size, more epochs
    for a run too short to judge) serves the primary problem, else the most severe found;
    with no finding at all the run could not be judged."""
    primary = inference.facts.get("diagnosis.primary")
    if primary in inference.findings:
        return primary
    found = problems_from(inference)
    if found:
        return found[0].name
    return "inconclusive" if "inconclusive" in PROBLEMS else "healthy"


def advice_from(inference: Inference) -> list[Advice]:
    """Advice facts the rules inferred, with the problem each one treats."""
    out = []
    for key, derivation in sorted(inference.derived_facts().items()):
        if key.startswith("advice.") and derivation.value is True:
            out.append(
                Advice(
                    name=key.removeprefix("advice."),
                    problem=treated_problem(derivation, inference.findings),
                    rule=derivation.rule.id,
                    reason=derivation.rule.reason,
                    source=derivation.rule.source,
                )
            )
    return out


def revised_plan(plan: Plan, fixes: list[Fix], inference: Inference) -> Plan:
    """The old plan with the fixes applied and their explanations in place.

    Raises:
        RuleError: a fix rule produced a value the Plan schema rejects (a bug in the rules).
    """
    if not fixes:
        return plan
    data = plan.model_dump(mode="json")
    explanations = dict(data.pop("explanations"))
    derivations = inference.plan_fields()
    for fix in sorted(fixes, key=lambda f: f.field.count(".")):
        set_path(data, fix.field, copy.deepcopy(fix.new))
        explanations = {
            key: value
            for key, value in explanations.items()
            if key != fix.field and not key.startswith(fix.field + ".")
        }
    for fix in fixes:
        derivation = derivations[fix.field]
        explanations[fix.field] = Explanation(
            value=fix.new,
            rule=fix.rule,
            reason=f"{fix.problem}: {fix.reason}",
            source=fix.source,
            matched={k: round_value(v) for k, v in derivation.matched.items()},
            overridden=[
                Overridden(rule=rule.id, value=value, priority=rule.priority, reason=rule.reason)
                for rule, value in derivation.overridden
            ],
        ).model_dump(mode="json")
    data["explanations"] = explanations
    try:
        return Plan.model_validate(data)
    except ValidationError as err:
        rules = ", ".join(sorted({f.rule for f in fixes}))
        raise RuleError(
            f"the fixes ({rules}) made an invalid plan: {describe_validation_error(err, Plan)}"
        ) from None
