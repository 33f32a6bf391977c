"""The knowledge base: rule files (TOML) loaded into validated Rule objects.

A rule is data: conditions over facts (structured comparisons joined by AND,
with explicit ``any`` / ``all`` / ``not`` groups), conclusions (``infer`` new
facts, ``recommend`` plan fields, ``diagnose`` a training problem), a priority,
the reason in words and its source.  There is no expression language and no
``eval``: values may be literals or a handful of structured arithmetic forms
(``{ceil_div = ["n_train", "plan.batch_size"]}``) whose string operands name
facts.  Linting lives in ``advisor.expert.lint``; inference in ``advisor.expert.inference``.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from advisor.contract.errors import InputError, RuleError
from advisor.contract.inputs import read_text

OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "exists")
Domain = Literal["recommend", "diagnose"]
RULE_KEYS = {
    "when",
    "infer",
    "recommend",
    "diagnose",
    "priority",
    "reason",
    "source",
    "example",
    "domain",
}


# ----------------------------------------------------------------------------- values


def _num(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what}: expected a number, got {type(value).__name__}")
    return value


def _ceil_div(a: float, b: float) -> int:
    return math.ceil(a / b)


def _round_to(a: float, b: float) -> float:
    """Round a to the nearest multiple of b (at least b)."""
    return max(b, round(a / b) * b)


def _scale(values: list[float] | float, factor: float) -> list[int] | int:
    """Every element times factor, rounded to a whole number, at least 1 (e.g. conv filters)."""
    if isinstance(values, list):
        return [max(1, round(v * factor)) for v in values]
    return max(1, round(values * factor))


def _pow2(a: float) -> int:
    """The power of two nearest to a (in log space)."""
    return 2 ** max(0, round(math.log2(max(a, 1))))


# name -> (arity or None for variadic, function over numbers)
ARITHMETIC: dict[str, tuple[int | None, Any]] = {
    "add": (None, lambda *xs: sum(xs)),
    "mul": (None, lambda *xs: math.prod(xs)),
    "sub": (2, lambda a, b: a - b),
    "div": (2, lambda a, b: a / b),
    "ceil_div": (2, _ceil_div),
    "min": (None, min),
    "max": (None, max),
    "clip": (3, lambda x, lo, hi: min(max(x, lo), hi)),
    "round": (1, lambda a: int(round(a))),
    "round_to": (2, _round_to),
    "pow2": (1, _pow2),
    "log10": (1, math.log10),
    "sqrt": (1, math.sqrt),
    "scale": (2, _scale),  # the one form whose first operand may be a list of numbers
}
EXPRESSION_KEYS = set(ARITHMETIC) | {"from"}


def is_expression(value: Any) -> bool:
    """A one-key table naming an arithmetic form or ``from``."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in EXPRESSION_KEYS


def contains_expression(value: Any) -> bool:
    """Whether a value is an expression or a literal table/list with one inside."""
    if is_expression(value):
        return True
    if isinstance(value, dict):
        return any(contains_expression(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_expression(v) for v in value)
    return False


def expression_facts(value: Any) -> set[str]:
    """Fact names a value reads, including expressions nested in literal tables and lists."""
    if not is_expression(value):
        if isinstance(value, dict):
            return set().union(*(expression_facts(v) for v in value.values()))
        if isinstance(value, list):
            return set().union(*(expression_facts(v) for v in value))
        return set()
    ((op, args),) = value.items()
    if op == "from":
        return {args}
    out: set[str] = set()
    for arg in args if isinstance(args, list) else [args]:
        if isinstance(arg, str):
            out.add(arg)
        else:
            out |= expression_facts(arg)
    return out


class MissingFact(Exception):
    """An expression read a fact that is not known (yet)."""


def evaluate(value: Any, facts: dict[str, Any]) -> Any:
    """The value of a literal or expression under ``facts``.

    Literal tables and lists are evaluated item by item, so an expression may
    sit inside them (a search dimension whose bounds follow the learning rate);
    strings there stay literals: only expression operands name facts.

    Raises:
        MissingFact: an operand names a fact that is not in ``facts``.
    """
    if not is_expression(value):
        if isinstance(value, dict):
            return {key: evaluate(item, facts) for key, item in value.items()}
        if isinstance(value, list):
            return [evaluate(item, facts) for item in value]
        return value
    ((op, args),) = value.items()
    if op == "from":
        if args not in facts:
            raise MissingFact(args)
        return facts[args]
    arity, fn = ARITHMETIC[op]
    args = args if isinstance(args, list) else [args]
    operands = []
    for index, arg in enumerate(args):
        if isinstance(arg, str):
            if arg not in facts:
                raise MissingFact(arg)
            arg = facts[arg]
        else:
            arg = evaluate(arg, facts)
        if op == "scale" and index == 0 and isinstance(arg, list):
            operands.append([_num(v, op) for v in arg])
        else:
            operands.append(_num(arg, op))
    result = fn(*operands)
    if isinstance(result, float) and result.is_integer() and op in ("ceil_div", "round", "pow2"):
        return int(result)
    if isinstance(result, float) and math.isfinite(result):
        # 6 significant digits: 0.1 * 0.1 reads 0.01 in a plan, not 0.010000000000000002
        return float(f"{result:.6g}")
    return result


# ----------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Condition:
    """One comparison ``fact <op> value``, or a group: ``any`` / ``all`` / ``not``."""

    op: str
    fact: str | None = None
    value: Any = None
    children: tuple[Condition, ...] = ()

    @property
    def facts(self) -> set[str]:
        """Every fact this condition reads (including those its value expression reads)."""
        if self.fact is None:
            return (
                set().union(*(child.facts for child in self.children)) if self.children else set()
            )
        return {self.fact} | expression_facts(self.value)

    @property
    def size(self) -> int:
        """Number of leaf comparisons (the rule's specificity counts these)."""
        return 1 if self.fact is not None else sum(child.size for child in self.children)

    def holds(self, facts: dict[str, Any]) -> bool:
        """Whether the condition is true of ``facts``; a missing fact fails all but exists=false."""
        if self.op == "any":
            return any(child.holds(facts) for child in self.children)
        if self.op == "all":
            return all(child.holds(facts) for child in self.children)
        if self.op == "not":
            return not self.children[0].holds(facts)
        assert self.fact is not None  # by construction in parse_condition
        if self.op == "exists":
            return (self.fact in facts and facts[self.fact] is not None) == bool(self.value)
        if self.fact not in facts or facts[self.fact] is None:
            return False
        actual = facts[self.fact]
        try:
            expected = evaluate(self.value, facts)
        except MissingFact:
            return False
        try:
            return _COMPARE[self.op](actual, expected)
        except TypeError:
            return False

    def describe(self) -> str:
        """A short human reading, e.g. ``n_train < 1000``."""
        if self.op in ("any", "all"):
            joiner = " or " if self.op == "any" else " and "
            return "(" + joiner.join(child.describe() for child in self.children) + ")"
        if self.op == "not":
            return f"not {self.children[0].describe()}"
        symbol = {
            "eq": "=",
            "ne": "!=",
            "lt": "<",
            "le": "<=",
            "gt": ">",
            "ge": ">=",
            "in": "in",
            "not_in": "not in",
        }.get(self.op)
        if self.op == "exists":
            return f"{self.fact} is known" if self.value else f"{self.fact} is unknown"
        return f"{self.fact} {symbol} {_show(self.value)}"


def _show(value: Any) -> str:
    if is_expression(value):
        ((op, args),) = value.items()
        return f"{op}({args})"
    return repr(value) if isinstance(value, str) else str(value)


_COMPARE = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
}


def parse_condition(raw: Any, where: str) -> Condition:
    """Build a Condition from its TOML table, or raise RuleError saying what is wrong."""
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: a condition must be a table, got {raw!r}")
    groups = [key for key in ("any", "all", "not") if key in raw]
    if groups:
        if len(raw) != 1:
            raise RuleError(f"{where}: a '{groups[0]}' group must be the only key of its table")
        key = groups[0]
        if key == "not":
            return Condition("not", children=(parse_condition(raw["not"], f"{where}.not"),))
        items = raw[key]
        if not isinstance(items, list) or not items:
            raise RuleError(f"{where}.{key}: expected a non-empty list of conditions")
        return Condition(
            key,
            children=tuple(parse_condition(c, f"{where}.{key}[{i}]") for i, c in enumerate(items)),
        )
    if "fact" not in raw:
        raise RuleError(
            f"{where}: a condition needs 'fact' and one operator ({', '.join(OPERATORS)})"
        )
    if not isinstance(raw["fact"], str):
        raise RuleError(f"{where}.fact: got a {type(raw['fact']).__name__}; expected one fact name")
    ops = [key for key in raw if key != "fact"]
    if len(ops) != 1 or ops[0] not in OPERATORS:
        raise RuleError(
            f"{where}: expected exactly one operator of {', '.join(OPERATORS)}; got {', '.join(ops) or 'none'}"
        )
    op = ops[0]
    value = raw[op]
    if op in ("in", "not_in") and not isinstance(value, list):
        raise RuleError(f"{where}: '{op}' needs a list")
    if op == "exists" and not isinstance(value, bool):
        raise RuleError(f"{where}: 'exists' needs true or false")
    _check_expression(value, f"{where}.{op}")
    return Condition(op, fact=raw["fact"], value=value)


def _check_expression(value: Any, where: str) -> None:
    if not is_expression(value):
        if isinstance(value, dict):
            for key, item in value.items():
                _check_expression(item, f"{where}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                _check_expression(item, f"{where}[{i}]")
        return
    ((op, args),) = value.items()
    if op == "from":
        if not isinstance(args, str):
            raise RuleError(f"{where}: 'from' names a fact, got {args!r}")
        return
    arity, _ = ARITHMETIC[op]
    args = args if isinstance(args, list) else [args]
    if arity is not None and len(args) != arity:
        raise RuleError(f"{where}: '{op}' takes {arity} operand(s), got {len(args)}")
    for i, arg in enumerate(args):
        if isinstance(arg, bool) or not isinstance(arg, (str, int, float, dict)):
            raise RuleError(f"{where}.{op}[{i}]: expected a number, a fact name or an expression")
        if isinstance(arg, dict):
            if not is_expression(arg):
                raise RuleError(f"{where}.{op}[{i}]: a table operand must be an expression")
            _check_expression(arg, f"{where}.{op}[{i}]")


# ----------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Finding:
    """A ``diagnose`` conclusion: a problem name, its severity, and its epoch-range facts."""

    problem: str
    severity: str
    epochs: tuple[str, str] | None = None
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    """One rule of the knowledge base."""

    id: str
    when: tuple[Condition, ...]
    priority: int
    reason: str
    source: str
    file: str
    domain: str = "recommend"
    infer: dict[str, Any] = field(default_factory=dict)
    recommend: dict[str, Any] = field(default_factory=dict)
    diagnose: Finding | None = None
    example: dict[str, Any] | None = None

    @property
    def specificity(self) -> int:
        return sum(cond.size for cond in self.when)

    @property
    def rank(self) -> tuple[int, int, str]:
        """Conflict-resolution order: priority, then specificity, then id (for determinism)."""
        return (self.priority, self.specificity, self.id)

    @property
    def reads(self) -> set[str]:
        """Facts the rule's conditions and value expressions read."""
        out: set[str] = set()
        for cond in self.when:
            out |= cond.facts
        for value in (*self.infer.values(), *self.recommend.values()):
            out |= expression_facts(value)
        if self.diagnose is not None:
            out |= set(self.diagnose.epochs or ()) | set(self.diagnose.evidence)
        return out

    @property
    def writes(self) -> set[str]:
        """Facts the rule's conclusions write (plan fields as ``plan.<path>``)."""
        out = set(self.infer) | {f"plan.{path}" for path in self.recommend}
        if self.diagnose is not None:
            out.add(f"problem.{self.diagnose.problem}")
        return out

    def matches(self, facts: dict[str, Any]) -> bool:
        return all(cond.holds(facts) for cond in self.when)

    def matched_facts(self, facts: dict[str, Any]) -> dict[str, Any]:
        """The facts (and their values) the rule's conditions read, as evidence."""
        names: set[str] = set()
        for cond in self.when:
            names |= cond.facts
        return {name: facts[name] for name in sorted(names) if name in facts}

    def describe_when(self) -> str:
        return " and ".join(cond.describe() for cond in self.when) or "always"


def parse_rule(rule_id: str, raw: Any, file: str, default_domain: str = "recommend") -> Rule:
    """Build a Rule from its TOML table; every mistake is a RuleError naming file and rule."""
    if len(rule_id) > 100:
        raise RuleError(
            f"{file}: [{rule_id[:40]}...]: a rule id of {len(rule_id)} characters; expected <= 100"
        )
    where = f"{file}: [{rule_id}]"
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: expected a table")
    unknown = set(raw) - RULE_KEYS
    if unknown:
        from advisor.contract.errors import suggest

        name = sorted(unknown)[0]
        raise RuleError(f"{where}: unknown key {name[:40]!r}; {suggest(name, RULE_KEYS)}")
    for key in ("reason", "source"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise RuleError(f"{where}: '{key}' is required (one sentence of text)")
    priority = raw.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise RuleError(f"{where}: 'priority' is required and must be an integer")
    when_raw = raw.get("when", [])
    if not isinstance(when_raw, list):
        raise RuleError(f"{where}: 'when' must be a list of conditions")
    when = tuple(parse_condition(c, f"{where}.when[{i}]") for i, c in enumerate(when_raw))
    infer = raw.get("infer", {})
    recommend = raw.get("recommend", {})
    for key, table in (("infer", infer), ("recommend", recommend)):
        if not isinstance(table, dict):
            raise RuleError(f"{where}: '{key}' must be a table")
        for name, value in table.items():
            _check_expression(value, f"{where}.{key}.{name}")
    diagnose = None
    if "diagnose" in raw:
        diagnose = _parse_finding(raw["diagnose"], f"{where}.diagnose")
    if not (infer or recommend or diagnose):
        raise RuleError(f"{where}: a rule needs a conclusion: infer, recommend or diagnose")
    example = raw.get("example")
    if example is not None and not isinstance(example, dict):
        raise RuleError(f"{where}: 'example' must be a table")
    domain = raw.get("domain", default_domain)
    if domain not in ("recommend", "diagnose"):
        raise RuleError(f"{where}: domain must be 'recommend' or 'diagnose', got {domain!r}")
    return Rule(
        id=rule_id,
        when=when,
        priority=priority,
        reason=raw["reason"].strip(),
        source=raw["source"].strip(),
        file=file,
        domain=domain,
        infer=dict(infer),
        recommend=dict(recommend),
        diagnose=diagnose,
        example=example,
    )


def _parse_finding(raw: Any, where: str) -> Finding:
    if not isinstance(raw, dict) or "problem" not in raw or "severity" not in raw:
        raise RuleError(f"{where}: expected a table with 'problem' and 'severity'")
    extra = set(raw) - {"problem", "severity", "epochs", "evidence"}
    if extra:
        raise RuleError(f"{where}: unknown key {sorted(extra)[0][:40]!r}")
    epochs = raw.get("epochs")
    if epochs is not None and (not isinstance(epochs, list) or len(epochs) != 2):
        raise RuleError(f"{where}.epochs: expected two fact names [first, last]")
    evidence = raw.get("evidence", [])
    if not isinstance(evidence, list) or not all(isinstance(e, str) for e in evidence):
        raise RuleError(f"{where}.evidence: expected a list of fact names")
    return Finding(
        problem=raw["problem"],
        severity=raw["severity"],
        epochs=tuple(epochs) if epochs else None,
        evidence=tuple(evidence),
    )


# ----------------------------------------------------------------------------- loading


def builtin_rules_dir() -> Path:
    """The rules shipped with the package (``advisor.knowledge``), or the checkout's rules/."""
    try:
        found = resources.files("advisor.knowledge")
        path = Path(str(found))
        if path.is_dir() and any(path.glob("*.toml")):
            return path
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "rules"


def load_rule_file(path: Path) -> list[Rule]:
    """Parse one TOML rule file."""
    try:
        data = tomllib.loads(read_text(path, what="TOML rule file"))
    except InputError as err:
        raise RuleError(str(err)) from None
    except tomllib.TOMLDecodeError as err:
        raise RuleError(f"{path}: not valid TOML ({err})") from None
    except RecursionError:
        raise RuleError(f"{path}: nested too deeply; expected a TOML rule file") from None
    except ValueError:  # tomllib's own int() of a number over 4300 digits
        raise RuleError(f"{path}: not valid TOML (a number too long)") from None
    default_domain = (
        data.pop("domain", "recommend") if isinstance(data.get("domain"), str) else "recommend"
    )
    return [parse_rule(rule_id, raw, path.name, default_domain) for rule_id, raw in data.items()]


_DOMAIN_LINE = re.compile(r"^\s*domain\s*=", re.MULTILINE)
_FILE_DOMAIN = re.compile(r'^domain\s*=\s*"(\w+)"', re.MULTILINE)


def declared_domain(path: Path) -> str | None:
    """The domain a rule file sets for all of its rules, when none of them can differ.

    That is a top-level ``domain = "..."`` before the first table and no other
    ``domain =`` line in the file; otherwise None (the file must be parsed to know).
    """
    try:
        text = read_text(path, what="TOML rule file")
    except InputError:
        return None  # load_rule_file reports it
    if not _DOMAIN_LINE.search(text):
        return "recommend"  # no domain line anywhere: every rule takes load_rule_file's default
    head = text.split("\n[", 1)[0]
    found = _FILE_DOMAIN.search(head)
    if found is None or len(_DOMAIN_LINE.findall(text)) != 1:
        return None
    return found.group(1)


def load_rules(
    dirs: list[str | Path] | None = None, *, include_builtin: bool = True, domain: str | None = None
) -> list[Rule]:
    """All rules from the built-in knowledge base plus ``dirs`` (files or folders).

    Args:
        dirs: extra rule files or folders.
        include_builtin: load the shipped knowledge base first.
        domain: skip files that declare another domain for all their rules (a
            recommendation need not parse the diagnosis rules); rules are not
            filtered otherwise, so callers still check ``rule.domain``.

    Raises:
        RuleError: a file does not parse, or two rules share an id.
    """
    paths: list[Path] = []
    if include_builtin:
        paths += sorted(builtin_rules_dir().glob("*.toml"))
    for entry in dirs or []:
        entry = Path(entry)
        if entry.is_dir():
            try:
                paths += sorted(entry.glob("*.toml"))
            except OSError as err:
                raise RuleError(f"{entry}: cannot be listed ({err.strerror})") from None
        elif entry.exists():
            paths.append(entry)
        else:
            raise RuleError(f"{entry}: no such rule file or folder")
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for path in paths:
        if domain is not None and declared_domain(path) not in (None, domain):
            continue
        for rule in load_rule_file(path):
            if rule.id in seen:
                raise RuleError(f"{path.name}: [{rule.id}] is already defined in {seen[rule.id]}")
            seen[rule.id] = path.name
            rules.append(rule)
    return rules
