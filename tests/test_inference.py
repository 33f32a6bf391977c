"""Forward chaining: properties on random rule bases (hypothesis), and on the real one.

Random rule bases over a few integer facts: rules compare facts (given or
derived) with constants, derive facts and set plan fields, some from
expressions; priorities collide on purpose.  Whatever the rules, inference
terminates, fires each rule at most once, gives the same result in any rule
order, and the value that wins is always the highest-ranked rule's.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.contract.plan_paths import flatten, nest
from advisor.expert.facts import example_facts
from advisor.expert.inference import infer, stratify
from advisor.expert.recommending import assemble_plan, recommend_rules
from advisor.expert.rules import Rule, parse_rule

BASE_FACTS = ["a", "b", "c"]
DERIVED = ["d", "e", "f"]
FIELDS = ["x", "y", "model.z"]
OPS = ["eq", "ne", "lt", "le", "gt", "ge"]


@st.composite
def rule_tables(draw, index: int) -> Rule:
    conditions = [
        {
            "fact": draw(st.sampled_from(BASE_FACTS + DERIVED)),
            draw(st.sampled_from(OPS)): draw(st.integers(0, 4)),
        }
        for _ in range(draw(st.integers(0, 2)))
    ]
    raw: dict = {
        "when": conditions,
        "priority": draw(st.integers(0, 3)),
        "reason": "r",
        "source": "s",
    }
    if draw(st.booleans()):
        raw["infer"] = {draw(st.sampled_from(DERIVED)): draw(st.integers(0, 4))}
    else:
        source = draw(st.sampled_from(BASE_FACTS + DERIVED))
        value = draw(st.one_of(st.integers(0, 4), st.just({"add": [source, 1]})))
        raw["recommend"] = {draw(st.sampled_from(FIELDS)): value}
    return parse_rule(f"r{index:02d}", raw, "random.toml")


@st.composite
def rule_bases(draw) -> list[Rule]:
    n = draw(st.integers(1, 14))
    return [draw(rule_tables(i)) for i in range(n)]


initial_facts = st.fixed_dictionaries({name: st.integers(0, 4) for name in BASE_FACTS})


def outcome(result) -> dict:
    """What a user can observe: each written key's value, winning rule and losers."""
    return {
        key: (d.value, d.rule.id, sorted((r.id, repr(v)) for r, v in d.overridden))
        for key, d in result.derivations.items()
    }


@settings(max_examples=200, deadline=None)
@given(rule_bases(), initial_facts)
def test_terminates_and_fires_each_rule_at_most_once(rules, facts):
    result = infer(facts, rules)
    assert len(result.fired) == len(set(result.fired))
    assert set(result.fired) <= {r.id for r in rules}


@settings(max_examples=200, deadline=None)
@given(rule_bases(), initial_facts, st.randoms(use_true_random=False))
def test_deterministic_under_shuffled_rule_order(rules, facts, rng):
    shuffled = list(rules)
    rng.shuffle(shuffled)
    assert outcome(infer(facts, shuffled)) == outcome(infer(facts, rules))


@settings(max_examples=200, deadline=None)
@given(rule_bases(), initial_facts)
def test_the_highest_ranked_writer_wins(rules, facts):
    result = infer(facts, rules)
    for derivation in result.derivations.values():
        assert all(derivation.rule.rank > loser.rank for loser, _ in derivation.overridden)


@settings(max_examples=200, deadline=None)
@given(rule_bases(), initial_facts)
def test_every_fired_rule_matched_the_facts_it_saw(rules, facts):
    """A winner's recorded evidence really satisfies its conditions (derivations at fire time)."""
    result = infer(facts, rules)
    for derivation in result.derivations.values():
        conditions_read = {c.fact for c in derivation.rule.when}
        assert conditions_read <= set(derivation.matched)
        assert derivation.rule.matches(derivation.matched)


@settings(max_examples=200, deadline=None)
@given(rule_bases())
def test_writers_come_before_their_readers(rules):
    order = [rule.id for stratum in stratify(rules) for rule in stratum]
    position = {rule_id: i for i, rule_id in enumerate(order)}
    strata = {rule.id: i for i, stratum in enumerate(stratify(rules)) for rule in stratum}
    for reader in rules:
        for writer in rules:
            if (
                writer is not reader
                and writer.writes & reader.reads
                and strata[writer.id] != strata[reader.id]
            ):
                assert position[writer.id] < position[reader.id]


def test_a_chain_of_derived_facts_is_followed_to_the_end():
    rules = [
        parse_rule(
            "size",
            {
                "when": [{"fact": "n", "lt": 10}],
                "infer": {"size": "small"},
                "priority": 1,
                "reason": "r",
                "source": "s",
            },
            "t",
        ),
        parse_rule(
            "quadrant",
            {
                "when": [{"fact": "size", "eq": "small"}],
                "infer": {"q": "small_similar"},
                "priority": 1,
                "reason": "r",
                "source": "s",
            },
            "t",
        ),
        parse_rule(
            "strategy",
            {
                "when": [{"fact": "q", "eq": "small_similar"}],
                "recommend": {"freeze.strategy": "feature_extractor"},
                "priority": 1,
                "reason": "r",
                "source": "s",
            },
            "t",
        ),
    ]
    result = infer({"n": 5}, list(reversed(rules)))
    assert result.fired == ("size", "quadrant", "strategy")
    assert result.derivations["plan.freeze.strategy"].matched == {"q": "small_similar"}


def test_a_loser_is_kept_with_its_value():
    rules = [
        parse_rule(
            "low", {"recommend": {"x": 1}, "priority": 1, "reason": "r", "source": "s"}, "t"
        ),
        parse_rule(
            "high", {"recommend": {"x": 2}, "priority": 5, "reason": "r", "source": "s"}, "t"
        ),
    ]
    derivation = infer({}, rules).derivations["plan.x"]
    assert (derivation.value, derivation.rule.id) == (2, "high")
    assert [(r.id, v) for r, v in derivation.overridden] == [("low", 1)]


def test_nest_and_flatten_round_trip():
    flat = {"model.arch": "mlp", "model.units": 64, "loss.params": {"gamma": 2.0}, "epochs": 3}
    nested = nest(flat)
    assert nested == {
        "model": {"arch": "mlp", "units": 64},
        "loss": {"params": {"gamma": 2.0}},
        "epochs": 3,
    }
    assert flatten("", nested)["loss.params.gamma"] == 2.0


# ----------------------------------------------------------------------------- the real knowledge base

PROFILES = [
    {
        "task": "multiclass",
        "modality": "tabular",
        "n_train": 1437,
        "input_shape": [64],
        "n_classes": 10,
    },
    {
        "task": "multiclass",
        "modality": "image",
        "n_train": 100,
        "input_shape": [8, 8, 1],
        "n_classes": 5,
        "pretrained.base": "runs/bases/digits_0to4",
        "pretrained.similarity": "different",
    },
    {
        "task": "detection",
        "modality": "image",
        "n_train": 150,
        "input_shape": [32, 32, 1],
        "n_classes": 3,
        "budget.max_trials": 30,
    },
    {
        "task": "gan",
        "modality": "image",
        "n_train": 1437,
        "input_shape": [8, 8, 1],
        "gan_objective": "wasserstein",
    },
]


def test_the_knowledge_base_gives_the_same_plan_in_any_rule_order():
    rules = recommend_rules()
    rng = random.Random(0)
    for example in PROFILES:
        facts = example_facts(example)
        expected = assemble_plan(infer(facts, rules))
        for _ in range(3):
            shuffled = list(rules)
            rng.shuffle(shuffled)
            assert assemble_plan(infer(facts, shuffled)) == expected


def test_no_rule_of_the_knowledge_base_fires_twice():
    rules = recommend_rules()
    for example in PROFILES:
        fired = infer(example_facts(example), rules).fired
        assert len(fired) == len(set(fired))
