"""advisor profile: profiles written from the data (counts, task, encoding) and similarity to a base, measured."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from advisor.cli.commands import cli
from advisor.contract.errors import InputError
from advisor.contract.schemas import NpzData, Profile
from advisor.workflows.profiling import parse_source, profile_data
from engine.datasets.data import load_data
from tests.engine_plans import DIGITS_CNN, make_plan


def _npz(tmp_path, x, y, name="data.npz"):
    np.savez(tmp_path / name, x=np.asarray(x, np.float32), y=np.asarray(y))
    return NpzData(path=str(tmp_path / name))


def test_the_counts_are_those_a_run_trains_on():
    source = parse_source("builtin:digits", classes=[5, 6, 7, 8, 9], subsample=100)
    profile = profile_data(source)
    data = load_data(
        make_plan(
            DIGITS_CNN, n_classes=5, **{"data.source": source.model_dump(), "model.output_units": 5}
        )
    )
    assert (profile.n_train, profile.n_val) == (data.n_train, data.n_val) == (99, 179)
    assert profile.class_counts == np.bincount(data.y_train).tolist() == [20, 20, 20, 19, 20]
    assert (
        profile.task,
        profile.modality,
        profile.input_shape,
        profile.n_classes,
        profile.label_encoding,
    ) == ("multiclass", "image", [8, 8, 1], 5, "integer")


RNG = np.random.default_rng(0)
TARGETS = {
    "ids": (RNG.integers(0, 3, 60), "multiclass", "integer"),
    "two ids": (RNG.integers(0, 2, 60), "binary", "integer"),
    "one-hot": (np.eye(3)[RNG.integers(0, 3, 60)], "multiclass", "one_hot"),
    "soft": (np.full((60, 4), 0.25), "multiclass", "soft"),
    "multi-hot": (RNG.integers(0, 2, (60, 4)), "multilabel", None),
    "quantities": (RNG.normal(0, 1, 60), "regression", None),
    "two quantities": (RNG.normal(0, 1, (60, 2)), "regression", None),
}


@pytest.mark.parametrize("kind", TARGETS)
def test_the_task_and_label_encoding_come_from_the_targets(kind, tmp_path):
    y, task, encoding = TARGETS[kind]
    profile = profile_data(_npz(tmp_path, RNG.normal(0, 1, (60, 5)), y))
    assert (profile.task, profile.label_encoding, profile.modality) == (task, encoding, "tabular")
    if kind == "two quantities":
        assert profile.n_targets == 2
    if kind == "multi-hot":
        assert profile.n_classes == 4


@pytest.mark.parametrize(
    ("data", "task", "encoding"),
    [
        ("builtin:diabetes", "regression", None),
        ("builtin:shapes_detection", "detection", "boxes"),
        ("builtin:breast_cancer", "binary", "integer"),
    ],
)
def test_bundled_datasets(data, task, encoding):
    profile = profile_data(parse_source(data))
    assert (profile.task, profile.label_encoding) == (task, encoding)


def test_a_csv_target_column_by_name(tmp_path):
    rows = ["a,b,kind,price"] + [
        f"{i},{i % 7},{'cat' if i % 3 else 'dog'},{i * 1.5 + 0.25}" for i in range(40)
    ]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    by_kind = profile_data(parse_source(str(tmp_path / "t.csv"), target="kind"), task=None)
    assert (by_kind.task, by_kind.n_classes) == (
        "binary",
        2,
    )  # text classes, read as ids in name order
    rows = ["a,b,price"] + [f"{i},{i % 7},{i * 1.5 + 0.25}" for i in range(40)]
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    by_price = profile_data(parse_source(str(tmp_path / "p.csv"), target="price"))
    assert by_price.task == "regression" and by_price.input_shape == [2]


def test_an_image_folder(tmp_path):
    from PIL import Image

    for label, value in (("cats", 40), ("dogs", 200)):
        (tmp_path / "pics" / label).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (12, 10), (value, i * 10, 0)).save(
                tmp_path / "pics" / label / f"{i}.png"
            )
    profile = profile_data(parse_source(str(tmp_path / "pics"), image_size=(8, 8)))
    assert (
        profile.task,
        profile.modality,
        profile.input_shape,
        profile.n_train + profile.n_val,
    ) == ("binary", "image", [8, 8, 3], 12)


def test_the_command_writes_a_profile_the_advisor_can_plan_from(tmp_path):
    result = CliRunner().invoke(
        cli, ["profile", "builtin:wine", "--name", "wine", "-o", str(tmp_path / "p.json")]
    )
    assert result.exit_code == 0, result.output
    assert (
        result.output.splitlines()[0]
        == "multiclass, tabular [13]: 142 training / 36 validation examples, 3 classes"
    )
    written = json.loads((tmp_path / "p.json").read_text())
    assert "imbalance_ratio" not in written  # unset fields are left out
    plan = CliRunner().invoke(cli, ["recommend", str(tmp_path / "p.json"), "--json"])
    assert plan.exit_code == 0 and json.loads(plan.output)["n_train"] == 142


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["builtin:mnist"],
            "error: DATA: 'builtin:mnist' is not a bundled dataset; expected builtin: and one of digits, "
            "iris, wine, breast_cancer, diabetes, shapes, shapes_detection, digits_attributes, "
            "digits_detection",
        ),
        (
            ["t.csv"],
            "error: --target: required for a CSV table (t.csv); name the column to predict",
        ),
        (
            ["builtin:digits", "--image-size", "8by8"],
            "error: --image-size: '8by8' is not HEIGHTxWIDTH, e.g. 64x64",
        ),
        (
            ["builtin:digits", "--classes", "5,six"],
            "error: --classes: '5,six' is not a comma-separated list of class ids, e.g. 5,6,7",
        ),
        (
            ["x.npz", "--subsample", "10"],
            "error: --subsample: applies to builtin: datasets only; select the rows of x.npz beforehand",
        ),
        (
            ["missing.npz"],
            "error: data.source.path: missing.npz does not exist; expected the npz data there",
        ),
        (
            ["nowhere"],
            "error: DATA: nowhere is not a data source; expected builtin:NAME, a .npz file, a .csv file or an image folder",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2_and_nothing_written(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["profile", *args, "-o", "p.json"])
    assert (result.exit_code, result.output.strip()) == (2, message)
    assert not (tmp_path / "p.json").exists()


def test_a_base_for_other_inputs_is_refused(digits_base):
    with pytest.raises(
        InputError,
        match=r"^--base: .* was trained on inputs of shape \[8, 8, 1\]; the data's are \[13\]",
    ):
        profile_data(parse_source("builtin:wine"), base=str(digits_base))


# ----------------------------------------------------------------------------- similarity, measured

KNOWN = {  # target data -> the side of 0.5 it must land on, for the digits 0-4 base
    "digits 0-4 (the base's own task)": (
        ("builtin:digits", {"classes": [0, 1, 2, 3, 4]}),
        "similar",
    ),
    "digits 5-9": (("builtin:digits", {"classes": [5, 6, 7, 8, 9]}), "similar"),
    "100 digits 5-9": (
        ("builtin:digits", {"classes": [5, 6, 7, 8, 9], "subsample": 100}),
        "similar",
    ),
    "generated shapes": (("builtin:shapes", {"n_samples": 600, "image_size": (8, 8)}), "different"),
    "100 generated shapes": (
        ("builtin:shapes", {"n_samples": 600, "image_size": (8, 8), "subsample": 100}),
        "different",
    ),
}


@pytest.mark.slow
def test_known_pairs_land_on_their_side_of_the_boundary(digits_base, tmp_path):
    scores = {}
    for name, ((data, options), side) in KNOWN.items():
        profile = profile_data(parse_source(data, **options), base=str(digits_base))
        scores[name] = profile.pretrained.similarity
        assert (profile.pretrained.similarity >= 0.5) == (side == "similar"), (
            name,
            profile.pretrained.measured,
        )
    noise = profile_data(
        _npz(tmp_path, RNG.uniform(0, 16, (300, 8, 8, 1)), RNG.integers(0, 4, 300)),
        base=str(digits_base),
    )
    assert (
        noise.pretrained.similarity < 0.5 and noise.pretrained.measured.relevance < 0.2
    )  # familiar moments, no structure
    assert min(scores[n] for n, (_, s) in KNOWN.items() if s == "similar") > 0.8
    assert max(scores[n] for n, (_, s) in KNOWN.items() if s == "different") < 0.3


@pytest.mark.slow
def test_the_profiled_base_structure_reaches_a_plan_that_runs(digits_base, tmp_path):
    from advisor.expert.recommending import recommend
    from advisor.workflows.running import run

    profile = profile_data(
        parse_source("builtin:digits", classes=[5, 6, 7, 8, 9], subsample=100),
        base=str(digits_base),
    )
    assert profile.pretrained.model.filters == [32, 64] and profile.pretrained.input_shape == [
        8,
        8,
        1,
    ]
    assert (
        profile.pretrained.source_domain == "digits_0to4: builtin:digits (classes [0, 1, 2, 3, 4])"
    )
    from engine.outputs.checkpoint import flatten, load_checkpoint

    weights = flatten(load_checkpoint(digits_base)[0]["params"])
    assert profile.pretrained.n_params == sum(w.size for w in weights.values())
    Profile.model_validate_json(profile.model_dump_json())  # the file round-trips
    plan = recommend(profile)
    assert (plan.freeze.strategy, plan.model.filters, plan.model.base) == (
        "feature_extractor",
        [32, 64],
        str(digits_base),
    )
    result = run(plan.model_copy(update={"epochs": 2}), out_dir=tmp_path / "run")
    assert result.metrics["val_accuracy"] > 0.2


def _counts(tmp_path, outlier: float | None = None):
    """A count target (Poisson around 33, a span of about 40), optionally with one wild value."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5)).astype(np.float32)
    y = rng.poisson(np.exp(3.5 + 0.1 * x[:, 0])).astype(np.float64)
    if outlier is not None:
        y[7] = outlier
    return _npz(tmp_path, x, y, "counts.npz").path


def test_an_integer_count_target_becomes_regression_with_the_reason_printed(tmp_path):
    path = _counts(tmp_path)
    result = CliRunner().invoke(cli, ["profile", path, "-o", str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.output
    profile = Profile.model_validate_json((tmp_path / "p.json").read_text())
    assert profile.task == "regression" and profile.n_classes is None
    assert (
        profile.targets.integral
        and profile.targets.n_distinct >= 20
        and profile.targets.min_per_value < 5
    )
    assert "targets_integers_are_counts" in profile.targets.judged["targets.count"]
    assert "counts of something rather than class ids" in result.output
    asked = CliRunner().invoke(cli, ["profile", path, "--task", "multiclass", "--json"])
    assert json.loads(asked.output)["task"] == "multiclass"


def test_the_outlier_flag_is_measured_and_its_number_kept(tmp_path):
    plain = profile_data(NpzData(path=_counts(tmp_path)))
    wild = profile_data(NpzData(path=_counts(tmp_path, outlier=5000.0)))
    assert plain.targets_have_outliers is False and plain.targets.max_robust_z <= 3.5
    assert wild.targets_have_outliers is True and wild.targets.max_robust_z > 3.5
    assert "targets.outliers" in wild.targets.judged


def test_sparse_inputs_are_measured_and_the_wishes_left_to_the_user(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.random((200, 50)) < 0.05).astype(np.float32)  # one-hot-like: 95 % zeros
    y = (x[:, 0] > 0).astype(np.int64)
    profile_path = tmp_path / "p.json"
    result = CliRunner().invoke(
        cli, ["profile", _npz(tmp_path, x, y).path, "-o", str(profile_path)]
    )
    assert result.exit_code == 0, result.output
    written = json.loads(profile_path.read_text())
    assert written["sparse_inputs"] is True
    assert written["inputs"]["zero_fraction"] == pytest.approx(0.95, abs=0.01)
    assert "inputs_mostly_zero_sparse" in written["inputs"]["judged"]["inputs.sparse"]
    assert "margin_classifier" not in written and "flip_invariant" not in written
    dense = profile_data(_npz(tmp_path, x + 1.0, y, "dense.npz"))
    assert dense.sparse_inputs is False and dense.inputs.zero_fraction == 0.0
