"""Forward chaining over the rules: match, select, fire, until nothing new can fire.

``infer(facts, rules)`` is a pure function.  The rules are first put in *strata*
by their data dependencies (a rule that reads a fact comes after every rule that
writes it; rules that depend on each other share a stratum), so a rule never
reads a value that a later firing would still change.  Inside a stratum the
loop is the classic one: the agenda is every unfired rule whose conditions hold,
the rule of highest rank (priority, then specificity, then id) fires, each rule
fires at most once.  The winner for a fact or plan field is the highest-ranked
rule that wrote it, whatever the firing order; the losers are kept in its
derivation, which is written at fire time and is what ``advisor explain`` shows.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from advisor.contract.errors import RuleError
from advisor.contract.plan_paths import flatten, parents
from advisor.expert.rules import MissingFact, Rule, evaluate, expression_facts


@dataclass
class Derivation:
    """Why a fact or plan field has its value."""

    key: str
    value: Any
    rule: Rule
    matched: dict[str, Any]
    overridden: list[tuple[Rule, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Finding:
    """A problem a ``diagnose`` rule named, with the facts that show it."""

    problem: str
    severity: str
    rule: Rule
    matched: dict[str, Any]
    evidence: dict[str, Any]
    epochs: tuple[Any, Any] | None


@dataclass(frozen=True)
class Inference:
    """The result of forward chaining: final facts, winners with derivations, findings."""

    facts: Mapping[str, Any]
    derivations: dict[str, Derivation]
    findings: dict[str, Finding]
    fired: tuple[str, ...]

    def plan_fields(self) -> dict[str, Derivation]:
        """Derivations of plan fields, keyed by path without the ``plan.`` prefix."""
        return {
            key.removeprefix("plan."): d
            for key, d in self.derivations.items()
            if key.startswith("plan.")
        }

    def derived_facts(self) -> dict[str, Derivation]:
        """Derivations of facts that are not plan fields (and not problems)."""
        return {
            key: d
            for key, d in self.derivations.items()
            if not key.startswith("plan.") and not key.startswith("problem.")
        }


def _writer_index(writes: list[set[str]]) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    """Who writes each key exactly, and who writes some key below each prefix."""
    exact: dict[str, set[int]] = {}
    below: dict[str, set[int]] = {}
    for i, written in enumerate(writes):
        for key in written:
            exact.setdefault(key, set()).add(i)
            for prefix in parents(key):
                below.setdefault(prefix, set()).add(i)
    return exact, below


def _writers_of(key: str, exact: dict[str, set[int]], below: dict[str, set[int]]) -> set[int]:
    """Rules whose writes overlap ``key``: the key itself, a parent of it, or a part of it."""
    found = set(exact.get(key, ())) | below.get(key, set())
    for prefix in parents(key):
        found |= exact.get(prefix, set())
    return found


def stratify(rules: Iterable[Rule]) -> list[list[Rule]]:
    """Order rules so that every writer of a fact comes before its readers.

    Returns strongly connected components of the writer -> reader graph in
    topological order; ties are broken by the highest rank in each component.
    Keys overlap when they are equal or one is a dotted prefix of the other.
    """
    rules = sorted(rules, key=lambda r: r.id)
    exact, below = _writer_index([r.writes for r in rules])
    edges: list[set[int]] = [set() for _ in rules]
    for j, reader in enumerate(rules):
        for key in reader.reads:
            for i in _writers_of(key, exact, below):
                if i != j:
                    edges[i].add(j)
    components = _tarjan(len(rules), edges)
    comp_of = {node: c for c, comp in enumerate(components) for node in comp}
    # Kahn's algorithm on the condensation, highest-ranked component first among the ready ones.
    successors: list[set[int]] = [set() for _ in components]
    n_preds = [0] * len(components)
    for i, targets in enumerate(edges):
        for j in targets:
            a, b = comp_of[i], comp_of[j]
            if a != b and b not in successors[a]:
                successors[a].add(b)
                n_preds[b] += 1
    by_rank = sorted(
        range(len(components)),
        key=lambda c: max(rules[n].rank for n in components[c]),
        reverse=True,
    )
    position = {c: pos for pos, c in enumerate(by_rank)}
    ready = [position[c] for c in range(len(components)) if n_preds[c] == 0]
    heapq.heapify(ready)
    order: list[list[Rule]] = []
    while ready:
        chosen = by_rank[heapq.heappop(ready)]
        order.append(
            sorted((rules[n] for n in components[chosen]), key=lambda r: r.rank, reverse=True)
        )
        for successor in successors[chosen]:
            n_preds[successor] -= 1
            if n_preds[successor] == 0:
                heapq.heappush(ready, position[successor])
    return order


_STRATA_CACHE: dict[tuple[int, ...], tuple[list[Rule], list[list[Rule]]]] = {}


def _strata(rules: list[Rule]) -> list[list[Rule]]:
    """``stratify(rules)``, remembered for the same rule objects in the same order.

    The linter runs every rule's example over one rule base, and the search or
    diagnosis loop may infer many times; the ordering depends only on the rules.
    The cached entry holds the rules themselves, so their ids cannot be reused.
    """
    key = tuple(id(rule) for rule in rules)
    hit = _STRATA_CACHE.get(key)
    if hit is None:
        if len(_STRATA_CACHE) >= 8:
            _STRATA_CACHE.pop(next(iter(_STRATA_CACHE)))
        hit = _STRATA_CACHE[key] = (rules, stratify(rules))
    return hit[1]


def _tarjan(n: int, edges: list[set[int]]) -> list[list[int]]:
    """Strongly connected components (iterative Tarjan)."""
    counter = 0
    low = [0] * n
    number = [-1] * n
    on_stack = [False] * n
    stack: list[int] = []
    out: list[list[int]] = []
    for root in range(n):
        if number[root] != -1:
            continue
        work = [(root, iter(sorted(edges[root])))]
        number[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if number[child] == -1:
                    number[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack[child] = True
                    work.append((child, iter(sorted(edges[child]))))
                    advanced = True
                    break
                if on_stack[child]:
                    low[node] = min(low[node], number[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == number[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack[top] = False
                    comp.append(top)
                    if top == node:
                        break
                out.append(comp)
    return out


def can_fire(rule: Rule, facts: Mapping[str, Any]) -> bool:
    """Conditions hold and every fact the rule's value expressions read is known."""
    if not rule.matches(facts):
        return False
    needed: set[str] = set()
    for value in (*rule.infer.values(), *rule.recommend.values()):
        needed |= expression_facts(value)
    return all(facts.get(name) is not None for name in needed)


def infer(facts: Mapping[str, Any], rules: Iterable[Rule]) -> Inference:
    """Run the rules to a fixed point over ``facts`` (which this does not change).

    Args:
        facts: initial working memory, e.g. from ``advisor.expert.facts.profile_facts``;
            may hold ``plan.<path>`` entries (the plan being revised).
        rules: the knowledge base.

    Returns:
        The final facts, the winning derivation of each written key (losers
        inside), the findings of ``diagnose`` rules, and the firing order.
    """
    memory: dict[str, Any] = dict(facts)
    derivations: dict[str, Derivation] = {}
    findings: dict[str, Finding] = {}
    finding_rank: dict[str, tuple] = {}
    fired: list[str] = []
    for stratum in _strata(list(rules)):
        pending = list(stratum)
        while True:
            agenda = [rule for rule in pending if can_fire(rule, memory)]
            if not agenda:
                break
            rule = max(agenda, key=lambda r: r.rank)
            pending.remove(rule)
            fired.append(rule.id)
            _fire(rule, memory, derivations, findings, finding_rank)
    return Inference(memory, derivations, findings, tuple(fired))


def _fire(
    rule: Rule,
    memory: dict[str, Any],
    derivations: dict[str, Derivation],
    findings: dict[str, Finding],
    finding_rank: dict[str, tuple],
) -> None:
    matched = rule.matched_facts(memory)
    conclusions = {**rule.infer, **{f"plan.{p}": v for p, v in rule.recommend.items()}}
    values = {}
    for key, expr in conclusions.items():
        try:
            values[key] = evaluate(expr, memory)
        except MissingFact:  # pragma: no cover - can_fire checked these
            continue
        except (ArithmeticError, ValueError, TypeError) as err:
            # log10(0), a division by zero, a list where a number belongs: the rule is wrong
            raise RuleError(
                f"{rule.file}: [{rule.id}] {key}: cannot be computed from these facts "
                f"({type(err).__name__}: {err}); expected an expression defined for them"
            ) from None
        if isinstance(values[key], float) and not math.isfinite(values[key]):
            raise RuleError(
                f"{rule.file}: [{rule.id}] {key}: evaluates to {values[key]}; "
                "expected a finite number"
            )
        for name in sorted(expression_facts(expr)):
            matched.setdefault(name, memory.get(name))
    for key, value in values.items():
        current = derivations.get(key)
        if current is None or rule.rank > current.rule.rank:
            losers = [] if current is None else [*current.overridden, (current.rule, current.value)]
            derivations[key] = Derivation(key, value, rule, matched, losers)
            for stale in [k for k in memory if k.startswith(key + ".")]:
                del memory[stale]
            memory.update(flatten(key, value))
        else:
            current.overridden.append((rule, value))
    if rule.diagnose is not None:
        name = rule.diagnose.problem
        if name not in findings or rule.rank > finding_rank[name]:
            evidence = {k: memory.get(k) for k in rule.diagnose.evidence}
            epochs = None
            if rule.diagnose.epochs:
                epochs = tuple(memory.get(k) for k in rule.diagnose.epochs)
            findings[name] = Finding(name, rule.diagnose.severity, rule, matched, evidence, epochs)
            finding_rank[name] = rule.rank
        memory[f"problem.{name}"] = True
