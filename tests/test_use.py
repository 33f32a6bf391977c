"""Using a trained run: evaluate, predict, advisor.load, export, the test split, portable plans."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import advisor
from advisor.cli.commands import cli
from advisor.contract.loading import load_plan
from advisor.contract.schemas import Plan
from advisor.workflows.running import run
from engine.datasets.data import load_data, split_indices
from tests.engine_plans import make_plan

DIGITS_PLAN = Path("examples/plans/digits_mlp.json")


def _digits_plan(**data) -> Plan:
    plan = json.loads(DIGITS_PLAN.read_text())
    plan["epochs"] = 3
    plan["data"].update(data)
    return load_plan(plan)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """The bundled digits MLP example, trained for three epochs."""
    out = tmp_path_factory.mktemp("use") / "digits"
    run(_digits_plan(), out_dir=out)
    return out


def _raw_validation_rows(plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """The run's validation rows as the source gives them, before any scaling."""
    import sklearn.datasets

    digits = sklearn.datasets.load_digits()
    _, val_idx = split_indices(
        digits.target, "multiclass", plan.data.val_fraction, plan.data.split_seed
    )
    return digits.data[val_idx].astype(np.float32), digits.target[val_idx]


def test_evaluate_predict_and_load_agree_with_the_run(digits_run, tmp_path):
    plan = load_plan(digits_run / "plan.json")
    x, y = _raw_validation_rows(plan)
    np.savez(tmp_path / "val.npz", x=x, y=y)
    run_metrics = json.loads((digits_run / "metrics.json").read_text())

    evaluated = CliRunner().invoke(
        cli, ["evaluate", str(digits_run), "--data", str(tmp_path / "val.npz"), "--json"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.output)
    assert report["n"] == len(y)
    assert set(report["metrics"]) == {
        "loss",
        "accuracy",
        "auc",
        "f1",
        "precision",
        "recall",
        "top5_accuracy",
    }
    assert report["metrics"]["accuracy"] == pytest.approx(run_metrics["val_accuracy"], abs=1e-6)
    assert report["metrics"]["loss"] == pytest.approx(run_metrics["val_loss"], rel=1e-5)

    np.save(tmp_path / "val_x.npy", x)
    predicted = CliRunner().invoke(
        cli,
        ["predict", str(digits_run), str(tmp_path / "val_x.npy"), "-o", str(tmp_path / "p.csv")],
    )
    assert predicted.exit_code == 0, predicted.output
    with (tmp_path / "p.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    cli_classes = np.array([int(r["class"]) for r in rows])
    assert [int(r["id"]) for r in rows] == list(range(len(y)))  # the input's order

    model = advisor.load(digits_run)
    predictions = model.predict(x)
    assert np.array_equal(predictions.classes, cli_classes)
    assert np.mean(predictions.classes == y) == pytest.approx(run_metrics["val_accuracy"], abs=1e-6)
    assert np.allclose(predictions.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert model.evaluate(x, y) == pytest.approx(report["metrics"], rel=1e-6)
    assert model.history.series["val_loss"][-1] == run_metrics["val_loss"]
    assert model.plan.model.arch == "mlp"


def test_the_model_compiles_once_for_any_number_of_rows(digits_run):
    import jax

    model = advisor.load(digits_run)
    x, _ = _raw_validation_rows(model.plan)
    model.predict(x[:2])
    compiles = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        for n in (1, 7, 300, len(x)):
            assert len(model.predict(x[:n]).classes) == n
    finally:
        jax.monitoring.clear_event_listeners()
    assert compiles == []


def test_predict_writes_npy_and_json_in_the_input_order(digits_run, tmp_path):
    model = advisor.load(digits_run)
    x, _ = _raw_validation_rows(model.plan)
    np.save(tmp_path / "x.npy", x[:40])
    for suffix in (".npy", ".json"):
        result = CliRunner().invoke(
            cli,
            [
                "predict",
                str(digits_run),
                str(tmp_path / "x.npy"),
                "-o",
                str(tmp_path / f"p{suffix}"),
            ],
        )
        assert result.exit_code == 0, result.output
    probabilities = np.load(tmp_path / "p.npy")
    records = json.loads((tmp_path / "p.json").read_text())
    assert probabilities.shape == (40, 10)
    assert [r["class"] for r in records] == probabilities.argmax(axis=1).tolist()
    assert records[3]["p_5"] == pytest.approx(float(probabilities[3, 5]))


def test_mismatched_data_is_one_line_and_exit_2(digits_run, tmp_path):
    np.savez(tmp_path / "wide.npz", x=np.zeros((4, 65), np.float32), y=np.zeros(4, np.int64))
    result = CliRunner().invoke(
        cli, ["evaluate", str(digits_run), "--data", str(tmp_path / "wide.npz")]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: DATA {tmp_path / 'wide.npz'}: examples of shape [65]; the run's model takes [64] "
        "(the run folder's preprocessing.json)"
    ]
    np.savez(
        tmp_path / "bad_labels.npz", x=np.zeros((4, 64), np.float32), y=np.array([0, 1, 2, 12])
    )
    result = CliRunner().invoke(
        cli, ["evaluate", str(digits_run), "--data", str(tmp_path / "bad_labels.npz")]
    )
    assert result.exit_code == 2 and "labels run from 0 to 12 but n_classes is 10" in result.output
    result = CliRunner().invoke(
        cli, ["predict", str(tmp_path), str(tmp_path / "wide.npz"), "-o", "p.csv"]
    )
    assert result.exit_code == 2 and "plan.json does not exist" in result.output


def test_a_csv_run_reads_new_rows_by_column_name(tmp_path):
    header = ["a", "b", "label"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2))
    labels = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    with (tmp_path / "train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([[f"{a:.4f}", f"{b:.4f}", c] for (a, b), c in zip(x, labels, strict=True)])
    plan = make_plan(
        **{
            "data.source": {"kind": "csv", "path": "train.csv", "target": "label"},
            "input_shape": [2],
            "n_classes": 2,
            "task": "binary",
            "n_train": 64,
            "model.output_units": 1,
            "loss.name": "binary_crossentropy",
        }
    )
    (tmp_path / "plan.json").write_text(plan.model_dump_json())
    run(tmp_path / "plan.json", out_dir=tmp_path / "r")
    # the new table has its columns in another order and only one class: ids follow the names
    with (tmp_path / "new.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "b", "a"])
        writer.writerows([["yes", "1.0", "1.0"], ["yes", "2.0", "0.5"]])
    model = advisor.load(tmp_path / "r")
    evaluation = model.evaluate_data(str(tmp_path / "new.csv"))
    assert evaluation.n == 2 and 0.0 <= evaluation.metrics["accuracy"] <= 1.0
    result = CliRunner().invoke(
        cli,
        ["predict", str(tmp_path / "r"), str(tmp_path / "new.csv"), "-o", str(tmp_path / "p.csv")],
    )
    assert result.exit_code == 0, result.output
    with (tmp_path / "p.csv").open() as handle:
        predicted = [row["class_name"] for row in csv.DictReader(handle)]
    expected = model.predict(np.array([[1.0, 1.0], [0.5, 2.0]]))  # columns a, b
    assert predicted == [["no", "yes"][c] for c in expected.classes]
    with (tmp_path / "missing.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["a", "label"], ["1.0", "yes"]])
    result = CliRunner().invoke(
        cli, ["evaluate", str(tmp_path / "r"), "--data", str(tmp_path / "missing.csv")]
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: {tmp_path / 'missing.csv'}: column 'b' is missing; "
        "the run's model reads the columns "
        "a, b, label (preprocessing.json)"
    )


# ----------------------------------------------------------------------------- the test split


def test_test_fraction_is_held_out_stratified_and_leaves_validation_alone():
    without = load_data(_digits_plan())
    with_test = load_data(_digits_plan(test_fraction=0.1))
    assert with_test.x_test is not None and without.x_test is None
    n = without.n_train + without.n_val
    assert len(with_test.y_test) == pytest.approx(0.1 * n, abs=10)
    assert with_test.n_val == pytest.approx(without.n_val, abs=10)  # a share of the whole source
    assert with_test.n_train + with_test.n_val + len(with_test.y_test) == n
    assert set(np.unique(with_test.y_test)) == set(range(10))
    rows = {tuple(r) for r in with_test.x_test.reshape(len(with_test.y_test), -1).round(4)}
    assert not rows & {tuple(r) for r in with_test.x_train.reshape(with_test.n_train, -1).round(4)}


def _iris_with_test_source(folder: Path, labels: np.ndarray) -> Plan:
    import sklearn.datasets

    iris = sklearn.datasets.load_iris()
    np.savez(folder / "test.npz", x=iris.data[::5], y=labels)
    return make_plan(
        epochs=6,
        **{
            "data.test": {"kind": "npz", "path": str(folder / "test.npz")},
            "regularization.early_stopping": {
                "monitor": "val_loss",
                "patience": 2,
                "restore_best": True,
            },
        },
    )


def test_the_test_split_never_touches_training_or_selection(tmp_path):
    import sklearn.datasets

    true_labels = sklearn.datasets.load_iris().target[::5]
    first = run(_iris_with_test_source(tmp_path, true_labels), out_dir=tmp_path / "true")
    second = run(
        _iris_with_test_source(tmp_path, (true_labels + 1) % 3), out_dir=tmp_path / "shuffled"
    )
    history = [
        json.loads((Path(r.run_dir) / "history.json").read_text())["series"]
        for r in (first, second)
    ]
    for series in history:
        series.pop("epoch_time")
    assert history[0] == history[1]
    assert (first.metrics, first.best_epoch) == (second.metrics, second.best_epoch)
    assert first.test_metrics["accuracy"] != second.test_metrics["accuracy"]
    written = json.loads((Path(first.run_dir) / "metrics.json").read_text())
    assert written["test"] == first.test_metrics
    assert set(first.test_metrics) == {"loss", "accuracy", "auc", "f1", "precision", "recall"}


def test_a_search_scores_only_its_best_trial_on_the_test_split(tmp_path):
    import sklearn.datasets

    from advisor.workflows.searching import search

    true_labels = sklearn.datasets.load_iris().target[::5]
    results = []
    for name, labels in (("true", true_labels), ("shuffled", (true_labels + 1) % 3)):
        folder = tmp_path / name
        folder.mkdir()
        plan = _iris_with_test_source(folder, labels).model_dump()
        plan["data"]["test"]["path"] = "test.npz"  # beside the plan file
        plan["epochs"] = 2
        plan["search"] = {
            "method": "grid",
            "space": {"optimizer.learning_rate": {"type": "categorical", "choices": [0.001, 0.03]}},
            "n_trials": 2,
            "epochs_per_trial": 2,
        }
        (folder / "plan.json").write_text(json.dumps(plan))
        results.append(
            search(folder / "plan.json", folder / "s", mode="sequential", progress=False)
        )
    assert results[0].best_trial == results[1].best_trial
    assert results[0].best_value == results[1].best_value
    assert results[0].best_test["accuracy"] != results[1].best_test["accuracy"]
    best = load_plan(results[0].best_plan)  # runs from any folder
    assert best.data.test.path == str(tmp_path / "true" / "test.npz")


# ------------------------------------------------------------------------ portable plans, export


def test_a_written_plan_runs_from_any_folder(tmp_path, monkeypatch):
    import sklearn.datasets

    iris = sklearn.datasets.load_iris()
    (tmp_path / "project" / "data").mkdir(parents=True)
    np.savez(tmp_path / "project" / "data" / "iris.npz", x=iris.data, y=iris.target)
    plan = make_plan(**{"data.source": {"kind": "npz", "path": "data/iris.npz"}})
    (tmp_path / "project" / "plan.json").write_text(plan.model_dump_json())
    result = run(tmp_path / "project" / "plan.json", out_dir=tmp_path / "elsewhere" / "r")
    written = load_plan(Path(result.plan))
    assert written.data.source.path == str(tmp_path / "project" / "data" / "iris.npz")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert load_data(written).n_train == 120
    next_plan = load_plan(Path(result.next_plan))
    assert Path(next_plan.data.source.path).is_absolute()
    revised = CliRunner().invoke(
        cli,
        [
            "diagnose",
            result.history,
            "--plan",
            str(tmp_path / "project" / "plan.json"),
            "-o",
            "next.json",
        ],
    )
    assert revised.exit_code == 0, revised.output
    assert load_data(load_plan(tmp_path / "elsewhere" / "next.json")).n_train == 120


def test_an_exported_model_gives_the_model_outputs(digits_run, tmp_path):
    result = CliRunner().invoke(
        cli, ["export", str(digits_run), "-o", str(tmp_path / "m.jaxexport")]
    )
    assert result.exit_code == 0, result.output
    exported = advisor.load_exported(tmp_path / "m.jaxexport")
    predictor = advisor.load(digits_run)._predictor
    x, _ = _raw_validation_rows(predictor.plan)
    for n in (3, 50):  # one file, any batch size
        expected = predictor.outputs(predictor.batches(x[:n]))
        got = exported(x[:n])
        assert got.shape == (n, 10)
        assert np.allclose(got, expected, atol=1e-5)
    # jax alone runs the file: no flax, no engine, no advisor
    script = (
        "import sys, numpy as np, jax\n"
        "from jax import export\n"
        f"f = export.deserialize(bytearray(open({str(tmp_path / 'm.jaxexport')!r}, 'rb').read()))\n"
        "x = np.load(sys.argv[1])\n"
        "np.save(sys.argv[2], np.asarray(f.call(x)))\n"
        "assert not {'flax', 'engine', 'advisor'} & set(sys.modules), sorted(sys.modules)\n"
    )
    np.save(tmp_path / "x.npy", x[:4])
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert np.allclose(np.load(tmp_path / "y.npy"), exported(x[:4]), atol=1e-6)
