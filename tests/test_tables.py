"""Tables through pandas: numbers as read, text columns as recorded category codes, Parquet."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from advisor.contract.errors import InputError
from advisor.contract.schemas import CsvData
from engine.datasets.data import load_data
from engine.datasets.sources import read_csv
from tests.engine_plans import make_plan

ROWS = [
    ("paris", 1.5, "a", 1),
    ("rome", -2.0, "b", 0),
    ("oslo", 0.25, "a", 1),
    ("paris", 3.0, "c", 0),
    ("rome", 1.0, "b", 1),
    ("oslo", -1.0, "c", 0),
] * 5


def _table(tmp_path, name="t.csv"):
    frame = pd.DataFrame(ROWS, columns=["city", "size", "grade", "y"])
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def test_text_columns_become_codes_in_sorted_order(tmp_path):
    raw = read_csv(CsvData(path="t.csv", target="y"), _table(tmp_path), "binary")
    assert raw.feature_names == ["city", "size", "grade"]
    assert raw.categories == {"city": ["oslo", "paris", "rome"], "grade": ["a", "b", "c"]}
    expected = [
        [["oslo", "paris", "rome"].index(c), s, ["a", "b", "c"].index(g)] for c, s, g, _ in ROWS
    ]
    np.testing.assert_array_equal(raw.x, np.array(expected, np.float32))
    np.testing.assert_array_equal(raw.y, [r[3] for r in ROWS])


def test_parquet_reads_as_the_same_csv(tmp_path):
    from_csv = read_csv(CsvData(path="t.csv", target="y"), _table(tmp_path), "binary")
    from_parquet = read_csv(
        CsvData(path="t.parquet", target="y"), _table(tmp_path, "t.parquet"), "binary"
    )
    np.testing.assert_array_equal(from_parquet.x, from_csv.x)
    np.testing.assert_array_equal(from_parquet.y, from_csv.y)
    assert from_parquet.categories == from_csv.categories


def test_given_categories_code_new_data_and_refuse_unseen_values(tmp_path):
    path = _table(tmp_path)
    given = {"city": ["rome", "paris", "oslo"]}
    raw = read_csv(CsvData(path="t.csv", target="y", categories=given), path, "binary")
    assert raw.x[0, 0] == 1.0 and raw.x[1, 0] == 0.0  # paris, rome in the given order
    with pytest.raises(InputError, match=r"^data.source.features: column 'city' holds 'oslo'"):
        read_csv(
            CsvData(path="t.csv", target="y", categories={"city": ["paris", "rome"]}),
            path,
            "binary",
        )


def test_numbers_match_a_plain_parse(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 4)).astype(np.float32)
    path = tmp_path / "n.csv"
    np.savetxt(
        path,
        np.c_[values, rng.integers(0, 3, 50)],
        delimiter=",",
        fmt="%.9g",
        header="a,b,c,d,y",
        comments="",
    )
    raw = read_csv(CsvData(path="n.csv", target="y"), path, "multiclass")
    np.testing.assert_array_equal(
        raw.x, np.loadtxt(path, delimiter=",", skiprows=1)[:, :4].astype(np.float32)
    )
    assert raw.categories is None


def test_the_run_folder_records_the_codes(tmp_path):
    from engine.run import RunOptions, run_plan

    _table(tmp_path)
    plan = make_plan(
        input_shape=[3],
        n_classes=2,
        task="binary",
        n_train=24,
        epochs=1,
        **{
            "model.output_units": 1,
            "loss.name": "binary_crossentropy",
            "data.source": {"kind": "csv", "path": "t.csv", "target": "y"},
        },
    )
    data = load_data(plan, tmp_path)
    assert data.categories == {"city": ["oslo", "paris", "rome"], "grade": ["a", "b", "c"]}
    run = run_plan(
        plan, RunOptions(out_dir=tmp_path / "run", base_dir=tmp_path, report=lambda _: None)
    )
    pre = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    assert pre["categories"] == data.categories
    assert run.run_dir == str(tmp_path / "run")
