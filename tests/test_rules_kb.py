"""The recommend knowledge base (rules/10_*.toml ... 49_*.toml), rule by rule.

One test per rule: its ``example`` is a valid profile on which it fires after
full inference (the chaining included), and the plan built from that example
is valid.  The base as a whole lints clean, every rule says why in words and
where the knowledge comes from, and every fact the rules derive is used.
"""

from __future__ import annotations

import re

import pytest

from advisor.contract.vocabulary import FACTS
from advisor.expert.facts import example_facts
from advisor.expert.inference import infer
from advisor.expert.lint import lint
from advisor.expert.recommending import assemble_plan, recommend_rules

RULES = recommend_rules()
OWN = [rule for rule in RULES if re.match(r"[1-4]\d_", rule.file)]


@pytest.mark.parametrize("rule", OWN, ids=[rule.id for rule in OWN])
def test_rule_fires_on_its_example_and_the_plan_is_valid(rule):
    assert rule.example is not None, "every rule carries the smallest profile on which it fires"
    result = infer(example_facts(rule.example), RULES)
    assert rule.id in result.fired
    plan = assemble_plan(result)
    for key in rule.recommend:
        explanation = plan.explanations[key]
        named = {explanation.rule, *(loser.rule for loser in explanation.overridden)}
        assert rule.id in named, f"{key} does not record {rule.id}"


def test_the_knowledge_base_lints_clean():
    assert [str(issue) for issue in lint(RULES)] == []


def test_the_recommend_files_hold_the_rules_the_brief_asks_for():
    files = {rule.file for rule in OWN}
    assert files == {
        "10_facts_size.toml",
        "15_data_model.toml",
        "20_task_loss.toml",
        "25_optimizer.toml",
        "30_learning_rate_schedule.toml",
        "35_training_config.toml",
        "40_transfer.toml",
        "45_regularization_search.toml",
        "12_profile_evidence.toml",
    }


SOURCE = re.compile(
    r"lecture \d+(\.\d+)?|\b(19|20)\d\d\b|profile budget|profile |Keras|PyTorch|Optuna|Detectron"
)


@pytest.mark.parametrize("rule", OWN, ids=[rule.id for rule in OWN])
def test_every_rule_says_why_and_where_from(rule):
    assert len(rule.reason.split()) >= 5, "a reason is a sentence for a practitioner"
    assert rule.reason.endswith((".", "?")), "a reason is a full sentence"
    assert SOURCE.search(rule.source), (
        f"source should name the lecture section or a reference: {rule.source}"
    )


def test_every_derived_fact_is_declared_and_read_by_some_rule():
    derived = {key for rule in OWN for key in rule.infer}
    assert derived <= set(FACTS)
    read = set().union(*(rule.reads for rule in RULES))
    # read by `advisor profile`, which picks the task and sets sparse_inputs from them
    read |= {"targets.count", "inputs.sparse"}
    unread = sorted(derived - read)
    assert unread == [], f"derived but never used: {unread}"


def test_size_thresholds_live_in_rules_not_code():
    """Moving a threshold is editing a rule: the size class follows the rule data."""
    facts = example_facts(
        {
            "task": "multiclass",
            "modality": "tabular",
            "n_train": 990,
            "input_shape": [4],
            "n_classes": 10,
        }
    )
    assert (
        infer(facts, RULES).facts["size_class"] == "small"
    )  # 99 per class: under the 100 threshold
    facts = example_facts(
        {
            "task": "multiclass",
            "modality": "tabular",
            "n_train": 1000,
            "input_shape": [4],
            "n_classes": 10,
        }
    )
    assert infer(facts, RULES).facts["size_class"] == "medium"
