"""``advisor rules check``: lint the knowledge base before it gives advice.

Finds: facts no one declared, plan paths the Plan has not, values a field or
categorical fact cannot take, conditions that can never hold together, rules
of equal rank that set the same field to different values (and could fire
together), and rules whose ``example`` does not make them fire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from advisor.contract.errors import suggest
from advisor.contract.plan_paths import is_plan_path, suggest_path, value_problem
from advisor.contract.vocabulary import FACTS, PROBLEMS
from advisor.expert.rules import Condition, Rule, contains_expression, is_expression


@dataclass(frozen=True)
class LintIssue:
    """One finding of the linter."""

    level: str  # "error" or "warning"
    rule: str
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: [{self.rule}] {self.level}: {self.message}"


def known_fact(name: str, derived: set[str]) -> bool:
    """Declared facts, plan fields, problems, and facts rules infer."""
    if name in FACTS or name in derived:
        return True
    if name.startswith("plan."):
        return is_plan_path(name.removeprefix("plan."))
    if name.startswith("problem."):
        return name.removeprefix("problem.") in PROBLEMS
    return False


# ----------------------------------------------------------------------------- checks


def lint(rules: Iterable[Rule]) -> list[LintIssue]:
    """Static checks of the rule base (examples are checked by ``check_examples``)."""
    rules = list(rules)
    issues: list[LintIssue] = []
    derived = {key for rule in rules for key in rule.infer}
    all_facts = sorted(set(FACTS) | derived)
    for rule in rules:

        def issue(message: str, level: str = "error", rule: Rule = rule) -> None:
            issues.append(LintIssue(level, rule.id, rule.file, message))

        for key in rule.infer:
            if key not in FACTS:
                issue(
                    f"infers undeclared fact {key!r}; declare it in advisor/contract/vocabulary.py FACTS"
                )
        for name in sorted(rule.reads):
            if not known_fact(name, derived):
                issue(f"reads unknown fact {name!r}; {suggest(name, all_facts)}")
        for path, value in rule.recommend.items():
            if not is_plan_path(path):
                nested = (
                    isinstance(value, dict)
                    and not is_expression(value)
                    and any(is_plan_path(f"{path}.{k}") for k in value)
                )
                hint = (
                    "; a nested table under 'recommend' is not a path: quote the dotted path"
                    if nested
                    else "; " + suggest_path(path)
                )
                issue(f"recommends unknown plan field {path!r}{hint}")
            elif not contains_expression(value):
                problem = value_problem(path, value)
                if problem:
                    issue(f"recommends {path} = {value!r}: {problem}")
        for cond in _leaves(rule.when):
            spec = FACTS.get(cond.fact or "")
            if spec and spec.values and cond.op in ("eq", "ne", "in", "not_in"):
                values = cond.value if isinstance(cond.value, list) else [cond.value]
                for value in values:
                    if value not in spec.values:
                        issue(
                            f"compares {cond.fact} with {value!r}; {suggest(str(value), spec.values)}"
                        )
        contradiction = _contradiction(rule.when)
        if contradiction:
            issue(f"can never fire: {contradiction}")
        if rule.diagnose is not None:
            if rule.diagnose.problem not in PROBLEMS:
                issue(
                    f"diagnoses unknown problem {rule.diagnose.problem!r}; {suggest(rule.diagnose.problem, PROBLEMS)}"
                )
            if rule.diagnose.severity not in ("info", "warning", "critical"):
                issue(f"severity {rule.diagnose.severity!r}; expected info, warning or critical")
    issues += _equal_rank_clashes(rules)
    return issues


def _leaves(conditions: Iterable[Condition]) -> list[Condition]:
    out = []
    for cond in conditions:
        if cond.fact is not None:
            out.append(cond)
        else:
            out += _leaves(cond.children)
    return out


def _bounds(conditions: Iterable[Condition]) -> dict[str, dict[str, Any]]:
    """Per fact, the constraints the top-level AND puts on it (literal values only)."""
    out: dict[str, dict[str, Any]] = {}
    for cond in conditions:
        if cond.fact is None or is_expression(cond.value):
            continue
        box = out.setdefault(
            cond.fact, {"lo": None, "hi": None, "eq": set(), "ne": set(), "in": None}
        )
        value = cond.value
        if cond.op in ("gt", "ge") and isinstance(value, (int, float)):
            if box["lo"] is None or value >= box["lo"][0]:
                box["lo"] = (value, cond.op == "ge")
        elif cond.op in ("lt", "le") and isinstance(value, (int, float)):
            if box["hi"] is None or value <= box["hi"][0]:
                box["hi"] = (value, cond.op == "le")
        elif cond.op == "eq":
            box["eq"].add(_hashable(value))
        elif cond.op == "ne":
            box["ne"].add(_hashable(value))
        elif cond.op == "in":
            allowed = {_hashable(v) for v in value}
            box["in"] = allowed if box["in"] is None else box["in"] & allowed
        elif cond.op == "not_in":
            box["ne"] |= {_hashable(v) for v in value}
        elif cond.op == "exists":
            box.setdefault("exists", set()).add(value)
    return out


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _contradiction(conditions: Iterable[Condition]) -> str | None:
    for fact, box in _bounds(conditions).items():
        if len(box["eq"]) > 1:
            return (
                f"{fact} cannot equal both {' and '.join(map(repr, sorted(map(str, box['eq']))))}"
            )
        if box["eq"] & box["ne"]:
            return f"{fact} must both equal and differ from {next(iter(box['eq'] & box['ne']))!r}"
        if box["in"] is not None:
            if not box["in"] - box["ne"]:
                return f"no value of {fact} is left by its 'in' and 'not_in' conditions"
            if box["eq"] and not box["eq"] <= box["in"]:
                return f"{fact} = {next(iter(box['eq']))!r} is not among its 'in' values"
        if box.get("exists") == {True, False}:
            return f"{fact} cannot be both known and unknown"
        compared = box["lo"] or box["hi"] or box["eq"] or box["ne"] or box["in"] is not None
        if box.get("exists") == {False} and compared:
            # every comparison fails on an unknown fact (Condition.holds)
            return f"{fact} must be unknown, yet it is compared with a value"
        lo, hi = box["lo"], box["hi"]
        if lo and hi and (lo[0] > hi[0] or (lo[0] == hi[0] and not (lo[1] and hi[1]))):
            return f"no {fact} is {'>=' if lo[1] else '>'} {lo[0]} and {'<=' if hi[1] else '<'} {hi[0]}"
        for eq in box["eq"]:
            if isinstance(eq, (int, float)) and not isinstance(eq, bool):
                if lo and (eq < lo[0] or (eq == lo[0] and not lo[1])):
                    return f"{fact} = {eq} is outside its lower bound {lo[0]}"
                if hi and (eq > hi[0] or (eq == hi[0] and not hi[1])):
                    return f"{fact} = {eq} is outside its upper bound {hi[0]}"
    return None


def exclusive(a: Rule, b: Rule) -> bool:
    """Whether the two rules' conditions provably cannot hold together."""
    return _contradiction((*a.when, *b.when)) is not None


def _equal_rank_clashes(rules: list[Rule]) -> list[LintIssue]:
    issues = []
    by_key: dict[str, list[tuple[Rule, Any]]] = {}
    for rule in rules:
        for key, value in {
            **rule.infer,
            **{f"plan.{p}": v for p, v in rule.recommend.items()},
        }.items():
            by_key.setdefault(key, []).append((rule, value))
    for key, setters in by_key.items():
        for i, (a, va) in enumerate(setters):
            for b, vb in setters[i + 1 :]:
                if a.domain != b.domain or a.rank[:2] != b.rank[:2] or va == vb:
                    continue
                if not exclusive(a, b):
                    issues.append(
                        LintIssue(
                            "error",
                            a.id,
                            a.file,
                            f"sets {key} = {va!r} at the same priority and specificity as "
                            f"[{b.id}] ({b.file}) sets {vb!r}, and both can fire; "
                            "give one a higher priority or make their conditions exclusive",
                        )
                    )
    return issues


def check_examples(
    rules: list[Rule], facts_for: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]
) -> list[LintIssue]:
    """Run every rule's ``example`` through full inference; the rule must fire.

    Args:
        rules: the whole rule base (examples need the chaining of other rules).
        facts_for: per domain, how an example becomes initial facts (a profile
            for 'recommend', curve features for 'diagnose').
    """
    from advisor.expert.inference import infer

    issues = []
    for rule in rules:
        if rule.example is None:
            issues.append(
                LintIssue("error", rule.id, rule.file, "has no 'example' to prove it can fire")
            )
            continue
        builder = facts_for.get(rule.domain)
        if builder is None:
            continue
        try:
            facts = builder(rule.example)
        except Exception as err:  # the example itself is invalid input
            issues.append(LintIssue("error", rule.id, rule.file, f"example is not valid: {err}"))
            continue
        domain_rules = [r for r in rules if r.domain == rule.domain]
        result = infer(facts, domain_rules)
        if rule.id not in result.fired:
            issues.append(
                LintIssue(
                    "error",
                    rule.id,
                    rule.file,
                    f"does not fire on its example (when: {rule.describe_when()})",
                )
            )
    return issues


def example_builders() -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    """How each domain turns a rule's ``example`` into initial facts.

    recommend: the example is a profile (dotted keys allowed) -> profile facts.
    diagnose: the example is a table of curve features (and ``plan.*`` values).
    """
    from advisor.diagnostics.diagnosis import example_facts as diagnose_example
    from advisor.expert.facts import example_facts as recommend_example

    return {"recommend": recommend_example, "diagnose": diagnose_example}
