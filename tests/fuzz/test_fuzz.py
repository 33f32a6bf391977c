"""No input ends in a traceback: the malformed-input corpus and hypothesis-drawn documents,
run in this process through every command and API entry point (issue 16).

Each case must end in exit 0 (the input is in fact valid) or one ``error:`` line
with exit 2 (1 for an engine error), leave no file behind when it fails, never
echo a line of its input, and finish within the bound.  The full run over
thousands of mutated files is ``benchmarks/fuzz.py``; the ``slow`` test here
runs a few hundred of them.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.contract.errors import InputError
from tests.fuzz.corpus import corpus, example, mutants
from tests.fuzz.harness import BAD, run_case

os.environ.setdefault("JAX_PLATFORMS", "cpu")

CASES = corpus()
LIMIT_S = 30.0


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVISOR_CACHE", str(tmp_path / "cache"))


def test_every_class_of_the_issue_has_cases():
    classes = {case.klass for case in CASES}
    assert {"json", "numbers", "data", "bases", "history", "rules", "paths", "security"} <= classes
    commands = {case.command for case in CASES}
    assert {
        "recommend",
        "explain",
        "diagnose",
        "run",
        "search",
        "lr-find",
        "profile",
        "import-base",
        "pretrain",
        "rules check",
        "rules list",
    } <= commands
    assert {c for c in commands if c.startswith("api:")} >= {
        "api:recommend",
        "api:diagnose",
        "api:explain",
        "api:load_profile",
        "api:load_plan",
        "api:load_history",
        "api:run",
        "api:search",
    }


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_malformed_input_is_one_line_exit_2_nothing_written(case, tmp_path):
    outcome = run_case(case, tmp_path / "case", LIMIT_S)
    assert outcome.outcome not in BAD, f"{outcome.outcome}: {outcome.detail}"
    if case.expect_error and outcome.outcome != "skipped":
        assert outcome.outcome == "error" and outcome.exit_code in (1, 2), outcome


@pytest.mark.slow
def test_mutated_example_files_never_end_in_a_traceback(tmp_path):
    bad = []
    for index, case in enumerate(mutants(200, seed=16)):
        outcome = run_case(case, tmp_path / f"m{index}", LIMIT_S)
        if outcome.outcome in BAD:
            bad.append((case.name, outcome.outcome, outcome.detail[-300:]))
    assert bad == []


# ----------------------------------------------------------------------------- hypothesis

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from([2**64, -(10**30), 5e-324, 1e308, "NaN", "Infinity"]),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _paths(value, (*prefix, index))


@st.composite
def mutated(draw, document):
    """``document`` with one value, anywhere in it, replaced by an arbitrary JSON value."""
    doc = json.loads(json.dumps(document))
    path = draw(st.sampled_from(list(_paths(doc))))
    value = draw(JSON_VALUES)
    if not path:
        return value
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_text_parses_or_is_one_input_error(text):
    from advisor.contract.inputs import parse_json

    try:
        parse_json(text, "x.json")
    except InputError as err:
        assert "\n" not in str(err) and str(err).startswith("x.json: ")


@settings(max_examples=150, deadline=None)
@given(mutated(example("profiles/iris_tiny.json")))
def test_a_mutated_profile_is_a_profile_or_one_input_error(doc):
    from advisor.contract.loading import load_profile

    try:
        profile = load_profile(doc)
    except InputError as err:
        assert "\n" not in str(err)
        return
    _assert_finite(profile.model_dump())


@settings(max_examples=150, deadline=None)
@given(mutated(example("plans/iris_tiny.json")))
def test_a_mutated_plan_is_a_plan_or_one_input_error(doc):
    from advisor.contract.loading import load_plan

    try:
        plan = load_plan(doc)
    except InputError as err:
        assert "\n" not in str(err)
        return
    # explanations record what rules matched (free-form); the plan's own fields are finite
    _assert_finite(plan.model_dump(exclude={"explanations", "derived_facts"}))
    assert plan.optimizer.learning_rate > 0 and 0 <= plan.model.dropout < 1


@settings(max_examples=100, deadline=None)
@given(mutated({"loss": [0.9, 0.6, 0.5, 0.45], "val_loss": [1.0, 0.8, 0.75, 0.8]}))
def test_a_mutated_history_is_diagnosed_or_one_input_error(doc):
    from advisor.diagnostics.diagnosis import diagnose

    try:
        diagnose(doc)
    except InputError as err:
        assert "\n" not in str(err)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutated(example("profiles/iris_tiny.json")))
def test_recommend_on_a_mutated_profile_file_exits_0_or_2_with_one_line(tmp_path, doc):
    from click.testing import CliRunner

    from advisor.cli.commands import cli

    (tmp_path / "p.json").write_text(json.dumps(doc))
    (tmp_path / "plan.json").unlink(missing_ok=True)
    result = CliRunner().invoke(
        cli, ["recommend", str(tmp_path / "p.json"), "-o", str(tmp_path / "plan.json")]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code in (0, 2)
    if result.exit_code == 2:
        assert result.output.count("\n") == 1 and result.output.startswith("error: ")
        assert not (tmp_path / "plan.json").exists()


def _assert_finite(value):
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, dict):
        for item in value.values():
            _assert_finite(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _assert_finite(item)


def test_the_corpus_folder_is_left_clean(tmp_path):
    """The harness itself: a failed case's inputs stay, nothing else appears."""
    case = next(c for c in CASES if c.name == "json/deep/recommend")
    run_case(case, tmp_path / "c", LIMIT_S)
    assert sorted(p.name for p in Path(tmp_path / "c").iterdir()) == ["input.json"]
