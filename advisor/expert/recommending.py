"""``recommend(profile) -> Plan``: a dataset profile in, a complete explained plan out.

The profile becomes facts (``advisor.expert.facts``), the recommend rules run to a
fixed point over them (``advisor.expert.inference``), and the winning plan fields are
nested into a validated ``Plan``.  Every field a rule set carries its
``Explanation`` (the rule, the facts it matched, its reason and source, and the
rules it overrode); the facts the rules derived on the way (size class,
transfer quadrant, predicted risks) are kept in ``derived_facts``.  A plan the
rules got wrong is a ``RuleError`` that names the rule behind the bad field.
Diagnosing an earlier run and folding its fixes in is ``advisor.diagnostics.diagnosis``'s
job; ``recommend`` only hands the history over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from advisor.contract.errors import RuleError
from advisor.contract.inputs import path_list
from advisor.contract.io import describe_validation_error
from advisor.contract.loading import load_profile
from advisor.contract.plan_paths import nest, parents
from advisor.contract.schemas import Explanation, Overridden, Plan, Profile
from advisor.expert.facts import profile_facts
from advisor.expert.inference import Derivation, Inference, infer
from advisor.expert.rules import Rule, builtin_rules_dir, load_rules


def recommend(
    profile: Profile | dict | str | Path,
    rules_dirs: list[str | Path] | None = None,
    history: Any = None,
) -> Plan:
    """The training plan the knowledge base recommends for ``profile``.

    Args:
        profile: a Profile, a dict, or the path of a profile JSON file.
        rules_dirs: extra rule files or folders, loaded after the built-in ones.
        history: an earlier run's history (a path or a History) to diagnose and
            fold into the plan; defaults to the profile's ``history`` field.

    Returns:
        A validated Plan whose ``explanations`` say why each field has its value.

    Raises:
        InputError: the profile (or history) is missing or invalid.
        RuleError: the rules do not load, or they produce an invalid plan.

    Example:
        >>> plan = recommend({"task": "binary", "modality": "tabular", "n_train": 455,
        ...                   "input_shape": [30], "n_classes": 2})
        >>> plan.loss.name, plan.explanations["loss.name"].rule
        ('binary_crossentropy', 'loss_binary_crossentropy')
    """
    loaded = load_profile(profile)
    label = str(profile) if isinstance(profile, (str, Path)) else "profile"
    plan = assemble_plan(infer(profile_facts(loaded), recommend_rules(rules_dirs)), label)
    history = history if history is not None else _profile_history(loaded, profile)
    if history is None:
        return plan
    return _revise(history, plan)


_RULES_CACHE: dict[tuple, list[Rule]] = {}


def recommend_rules(rules_dirs: list[str | Path] | None = None) -> list[Rule]:
    """The recommend-domain rules, parsed once per set of unchanged rule files.

    The cache key is every rule file's path, size and modification time, so an
    edited rule file is read again; a loop of recommendations parses nothing twice.
    """
    rules_dirs = path_list(rules_dirs, "rules_dirs")
    key = tuple(_file_stamps(rules_dirs))
    cached = _RULES_CACHE.get(key)
    if cached is None:
        loaded = load_rules(rules_dirs, domain="recommend")
        cached = [rule for rule in loaded if rule.domain == "recommend"]
        _RULES_CACHE.clear()
        _RULES_CACHE[key] = cached
    return cached


def _file_stamps(rules_dirs: list[str | Path] | None) -> list[tuple[str, int, int]]:
    paths = sorted(builtin_rules_dir().glob("*.toml"))
    for entry in rules_dirs or []:
        entry = Path(entry)
        paths += sorted(entry.glob("*.toml")) if entry.is_dir() else [entry]
    stamps = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:  # load_rules reports missing files with the right message
            stamps.append((str(path), -1, -1))
            continue
        stamps.append((str(path), stat.st_size, stat.st_mtime_ns))
    return stamps


def assemble_plan(result: Inference, label: str = "profile") -> Plan:
    """Nest the winning plan fields of an inference into a validated, explained Plan.

    Raises:
        RuleError: the fields do not make a valid plan; names the rule that set
            the offending field, or says that no rule set a required one.
    """
    fields = result.plan_fields()
    values = nest({path: derivation.value for path, derivation in fields.items()})
    explanations = {path: explanation_of(fields[path]) for path in sorted(fields)}
    # derived facts in the order the rules concluded them, so the chain reads top down
    derived = {key: explanation_of(d) for key, d in result.derived_facts().items()}
    try:
        return Plan.model_validate(
            {**values, "explanations": explanations, "derived_facts": derived}
        )
    except ValidationError as err:
        raise RuleError(_blame(err, fields, label)) from None


def explanation_of(derivation: Derivation) -> Explanation:
    """The file form of a derivation: value, rule, reason, source, evidence, losers."""
    return Explanation(
        value=derivation.value,
        rule=derivation.rule.id,
        reason=derivation.rule.reason,
        source=derivation.rule.source,
        matched=dict(sorted(derivation.matched.items())),
        overridden=[
            Overridden(rule=loser.id, value=value, priority=loser.priority, reason=loser.reason)
            for loser, value in derivation.overridden
        ],
    )


def _blame(err: ValidationError, fields: dict[str, Derivation], label: str) -> str:
    """One line: which plan field is wrong, why, and which rule set it (or that none did)."""
    text = describe_validation_error(err, Plan)
    path = text.split(":", 1)[0].strip()
    for above in [path, *reversed(parents(path))]:
        culprit = fields.get(above)
        if culprit is not None:
            rule = culprit.rule
            return f"{label}: the rules made an invalid plan: {text}; set by rule [{rule.id}] in {rule.file}"
    return (
        f"{label}: the rules made an invalid plan: {text}; "
        "no rule sets this field for this profile: add one to the knowledge base"
    )


def _profile_history(profile: Profile, source: Any) -> Path | None:
    """The profile's ``history`` path, relative to the profile file's folder."""
    if profile.history is None:
        return None
    path = Path(profile.history)
    if not path.is_absolute() and isinstance(source, (str, Path)):
        path = Path(source).parent / path
    return path


def _revise(history: Any, plan: Plan) -> Plan:
    """Diagnose the history against the plan and return the revised plan."""
    from advisor.diagnostics.diagnosis import revise_plan

    if isinstance(history, (str, Path)):
        from advisor.readers import load_history

        history = load_history(history)
    _, revised = revise_plan(history, plan)
    return revised
