"""Bad profiles get one line naming the file, the field and what was expected.

Through the CLI (exit code 2, nothing written, no traceback) for a table of
mistakes people make, and with hypothesis: any JSON object at all gives either
a plan or an InputError — never another exception.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.cli.commands import cli
from advisor.contract.errors import InputError
from advisor.contract.schemas import SCHEMAS, Plan, Profile
from advisor.expert.recommending import recommend

GOOD = {
    "task": "multiclass",
    "modality": "tabular",
    "n_train": 100,
    "input_shape": [4],
    "n_classes": 3,
}


def without(key: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != key}


# (case id, file content (dict = JSON of it, str = raw text, None = no file), the exact error line)
BAD_PROFILES = [
    ("missing file", None, "bad.json: no such file"),
    (
        "not JSON",
        "{task: 1",
        "bad.json: not valid JSON (line 1, column 2: Expecting property name enclosed in double quotes)",
    ),
    ("empty file", "", "bad.json: not valid JSON (line 1, column 1: Expecting value)"),
    ("not an object", "[1, 2]", "bad.json: the top level is a list; expected a JSON object"),
    (
        "wrong type",
        {**GOOD, "n_train": "many"},
        "bad.json: n_train: input should be a valid integer, unable to parse string as an integer; got 'many'",
    ),
    (
        "fractional count",
        {**GOOD, "n_train": 10.5},
        "bad.json: n_train: input should be a valid integer, got a number with a fractional part; got 10.5",
    ),
    (
        "unknown field",
        {**without("n_train"), "n_trian": 100},
        "bad.json: n_trian: unknown field; expected one of budget, class_counts, data, description, "
        "flip_invariant, format_version, gan_objective, gan_reconstruction, history, imbalance_ratio, input_shape, inputs, "
        "label_encoding, lr_find, margin_classifier, metric, modality, n_classes, n_targets, n_train, "
        "n_val, name, pretrained, sparse_inputs, targets, targets_have_outliers, task; did you mean 'n_train'? "
        "(and 1 more)",
    ),
    (
        "unknown nested field",
        {**GOOD, "budget": {"epochs": 3}},
        "bad.json: budget.epochs: unknown field; expected one of device, max_epochs, max_minutes, "
        "max_trials; did you mean 'max_epochs'?",
    ),
    ("missing task", without("task"), "bad.json: task: required field is missing"),
    (
        "misspelled task",
        {**GOOD, "task": "multi-class"},
        "bad.json: task: 'multi-class' is not allowed; expected one of binary, detection, gan, "
        "multiclass, multilabel, regression; did you mean 'multiclass'?",
    ),
    (
        "negative n_train",
        {**GOOD, "n_train": -5},
        "bad.json: n_train: -5 is out of range; expected a value greater than or equal to 1",
    ),
    (
        "zero-sized axis",
        {**GOOD, "input_shape": [0]},
        "bad.json: input_shape[0]: 0 is out of range; expected a value greater than or equal to 1",
    ),
    (
        "empty shape",
        {**GOOD, "input_shape": []},
        "bad.json: input_shape: is empty; expected at least 1 item(s)",
    ),
    (
        "one class for multiclass",
        {**GOOD, "n_classes": 1},
        "bad.json: n_classes: multiclass needs at least 2 classes, got 1",
    ),
    (
        "binary with 3 classes",
        {**GOOD, "task": "binary"},
        "bad.json: n_classes: a binary task has 2 classes, got 3",
    ),
    (
        "classification without classes",
        without("n_classes"),
        "bad.json: n_classes: required for task 'multiclass'",
    ),
    (
        "detection without classes",
        {"task": "detection", "modality": "image", "n_train": 100, "input_shape": [8, 8, 1]},
        "bad.json: n_classes: required for task 'detection' (the object classes)",
    ),
    (
        "similarity above 1",
        {**GOOD, "pretrained": {"base": "b", "similarity": 1.5}},
        "bad.json: pretrained.similarity: 1.5 is out of range; expected a value less than or equal to 1",
    ),
    (
        "similarity below 0",
        {**GOOD, "pretrained": {"base": "b", "similarity": -0.1}},
        "bad.json: pretrained.similarity: -0.1 is out of range; expected a value greater than or equal to 0",
    ),
    (
        "similarity word",
        {**GOOD, "pretrained": {"base": "b", "similarity": "close"}},
        "bad.json: pretrained.similarity: 'close' is not allowed; expected one of different, similar; or a number",
    ),
    (
        "pretrained without base",
        {**GOOD, "pretrained": {"similarity": "similar"}},
        "bad.json: pretrained.base: required field is missing",
    ),
    (
        "counts contradict n_classes",
        {**GOOD, "class_counts": [10, 20]},
        "bad.json: class_counts: 2 counts contradict n_classes = 3; expected one count per class",
    ),
    (
        "ratio contradicts counts",
        {**GOOD, "class_counts": [10, 20, 30], "imbalance_ratio": 10},
        "bad.json: imbalance_ratio: 10.0 contradicts class_counts (which give 3); give one or make them agree",
    ),
    (
        "ratio below 1",
        {**GOOD, "imbalance_ratio": 0.5},
        "bad.json: imbalance_ratio: 0.5 is out of range; expected a value greater than or equal to 1",
    ),
    (
        "boxes outside detection",
        {**GOOD, "label_encoding": "boxes"},
        "bad.json: label_encoding: 'boxes' is for task 'detection'",
    ),
    (
        "mask on a table",
        {**GOOD, "label_encoding": "mask"},
        "bad.json: label_encoding: 'mask' labels pixels; expected modality 'image' with input_shape [height, width, channels]",
    ),
    (
        "unknown data kind",
        {**GOOD, "data": {"kind": "s3", "path": "x"}},
        "bad.json: data: kind 's3' is unknown; expected one of builtin, csv, image_folder, npz",
    ),
    (
        "unknown dataset",
        {**GOOD, "data": {"kind": "builtin", "name": "mnist"}},
        "bad.json: data.name: 'mnist' is not allowed; expected one of breast_cancer, diabetes, digits, "
        "digits_attributes, digits_detection, iris, shapes, shapes_detection, wine",
    ),
    (
        "unknown device",
        {**GOOD, "budget": {"device": "cuda"}},
        "bad.json: budget.device: 'cuda' is not allowed; expected one of auto, cpu, gpu, tpu",
    ),
    (
        "zero epochs budget",
        {**GOOD, "budget": {"max_epochs": 0}},
        "bad.json: budget.max_epochs: 0 is out of range; expected a value greater than or equal to 1",
    ),
]


@pytest.mark.parametrize(
    ("content", "message"), [case[1:] for case in BAD_PROFILES], ids=[c[0] for c in BAD_PROFILES]
)
def test_bad_profile_is_one_line_exit_2_nothing_written(tmp_path, monkeypatch, content, message):
    monkeypatch.chdir(tmp_path)
    if isinstance(content, dict):
        (tmp_path / "bad.json").write_text(json.dumps(content))
    elif isinstance(content, str):
        (tmp_path / "bad.json").write_text(content)
    result = CliRunner().invoke(cli, ["recommend", "bad.json", "-o", "plan.json"])
    assert result.exit_code == 2
    assert result.output == f"error: {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        ["bad.json"] if content is not None else []
    )


def test_the_same_mistake_in_a_dict_names_the_profile():
    with pytest.raises(InputError, match=r"^profile: n_train: -5 is out of range"):
        recommend({**GOOD, "n_train": -5})


def test_every_schema_is_exported_and_strict():
    for name, model in SCHEMAS.items():
        schema = model.model_json_schema()
        assert schema["additionalProperties"] is False, name
        assert schema["properties"], name


# ----------------------------------------------------------------------------- hypothesis

FIELDS = list(Profile.model_fields)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 100_000),
    st.floats(-2, 1e6, allow_nan=False),
    st.sampled_from(
        [
            "multiclass",
            "binary",
            "regression",
            "gan",
            "detection",
            "multilabel",
            "image",
            "tabular",
            "sequence",
            "similar",
            "different",
            "integer",
            "one_hot",
            "mask",
            "x",
        ]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["base", "similarity", "kind", "name", "max_epochs", "device", "zz"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)
arbitrary_profiles = st.dictionaries(st.sampled_from([*FIELDS, "junk"]), json_values, max_size=10)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arbitrary_profiles)
def test_any_json_object_gives_a_plan_or_one_input_error(data):
    try:
        plan = recommend(data)
    except InputError as err:
        assert "\n" not in str(err)
        assert str(err).startswith("profile: ")
    else:
        assert isinstance(plan, Plan)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arbitrary_profiles, st.sampled_from(list(GOOD)))
def test_valid_core_plus_noise_never_tracebacks(noise, key):
    data = {**noise, key: GOOD[key]}
    try:
        recommend(data)
    except InputError:
        pass
