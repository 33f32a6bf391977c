"""advisor.contract.plan_paths: parse, get, set, flatten/nest, the schema's paths and suggestions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from advisor.contract.loading import load_plan
from advisor.contract.plan_paths import (
    flatten,
    get_path,
    is_plan_path,
    leaf_paths,
    nest,
    parents,
    parse,
    schema_paths,
    set_path,
    suggest_path,
    value_problem,
)

PLAN = load_plan("examples/plans/transfer_small_similar.json")


def test_a_path_parses_into_names_and_list_indices():
    assert parse("regularization.augmentation[1].strength") == [
        ("regularization", None),
        ("augmentation", 1),
        ("strength", None),
    ]
    with pytest.raises(KeyError, match="1bad"):
        parse("model.1bad")


def test_get_reads_through_tables_and_lists_and_a_miss_raises_or_gives_the_default():
    data = {"a": {"b": [{"c": 3}]}}
    assert get_path(data, "a.b[0].c") == 3
    with pytest.raises(KeyError):
        get_path(data, "a.x")
    with pytest.raises(IndexError):
        get_path(data, "a.b[4].c")
    with pytest.raises(KeyError):
        get_path(data, "a.b.c")  # a list is not a table
    assert get_path(data, "a.x.y", None) is None and get_path(data, "a.b[9]", "none") == "none"


def test_set_makes_the_tables_on_the_way_and_writes_list_items():
    data = {"a": {"b": [{"c": 3}]}}
    set_path(data, "a.b[0].c", 4)
    set_path(data, "x.y.z", 1)
    assert data == {"a": {"b": [{"c": 4}]}, "x": {"y": {"z": 1}}}


keys = st.text("abcxyz", min_size=1, max_size=3)
tables = st.recursive(
    st.integers(), lambda inner: st.dictionaries(keys, inner, min_size=1, max_size=3), max_leaves=8
)


@given(st.dictionaries(keys, tables, min_size=1, max_size=3))
def test_nest_undoes_flatten_and_every_flat_path_reads_back(data):
    flat = flatten("", data)
    assert nest(flat) == data
    for path, value in flat.items():
        assert get_path(data, path) == value


def test_a_strict_nest_refuses_a_path_under_a_plain_value():
    assert nest({"a": {"k": 1}, "a.b": 2}, strict=True) == {"a": {"k": 1, "b": 2}}
    with pytest.raises(ValueError, match="'a' is both a value and a table"):
        nest({"a": 1, "a.b": 2}, strict=True)


def test_the_schema_lists_plan_fields_open_tables_and_leaves_out_the_advice():
    paths = schema_paths()
    assert "optimizer.learning_rate" in paths and "loss.params.*" in paths
    assert not any(p.startswith(("explanations", "derived_facts")) for p in paths)
    assert is_plan_path("loss.params.gamma") and not is_plan_path("optimizer.learning_rte")


def test_every_leaf_of_a_real_plan_reads_back_and_its_tables_are_schema_paths():
    data = PLAN.model_dump(exclude={"explanations", "derived_facts"})
    data["regularization"]["augmentation"] = [{"name": "flip", "strength": 0.5}]
    leaves = leaf_paths(data)
    assert (
        "optimizer.learning_rate" in leaves and "regularization.augmentation[0].strength" in leaves
    )
    for path in leaves:
        get_path(data, path)
        assert is_plan_path(path.split("[")[0]) or "[" in path, path


def test_a_bad_value_and_a_misspelt_path_are_named():
    assert value_problem("batch_size", "big") is not None
    assert (
        value_problem("batch_size", 32) is None and value_problem("loss.params.gamma", "x") is None
    )
    assert "did you mean 'optimizer.learning_rate'?" in suggest_path("optimizer.learning_rte")
    assert "did you mean 'model.units'?" in suggest_path("model.unit", ["model.units", "epochs"])


def test_the_parents_of_a_path_run_from_the_top_down():
    assert parents("regularization.early_stopping.patience") == [
        "regularization",
        "regularization.early_stopping",
    ]
    assert parents("epochs") == []
