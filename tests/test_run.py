"""engine.run / advisor.run: the run directory, transfer from a run, divergence, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from advisor.contract.errors import EngineError, InputError
from advisor.contract.schemas import History, Plan
from advisor.readers import load_history
from advisor.workflows.running import run
from engine.outputs.checkpoint import load_checkpoint
from tests.engine_plans import DIGITS_GAN, IRIS, make_plan
from tests.test_train import diverging_plan

RUN_FILES = {
    "plan.json",
    "history.json",
    "metrics.json",
    "model.safetensors",
    "model.json",
    "preprocessing.json",
    "curves.png",
    "diagnosis.json",
    "next_plan.json",
    "run.json",
    "history.csv",
}


def test_a_run_writes_its_directory(tmp_path):
    result = run(make_plan(epochs=2), out_dir=tmp_path / "r")
    files = {p.name for p in (tmp_path / "r").iterdir()}
    events = {name for name in files if name.startswith("events.out.tfevents.")}
    assert files - events == RUN_FILES and len(events) == 1  # no checkpoint: under a minute
    history = History.model_validate_json((tmp_path / "r" / "history.json").read_text())
    assert history.source.format == "native" and history.epochs == [1, 2]
    assert load_history(tmp_path / "r" / "history.json").series["loss"] == history.series["loss"]
    resolved = Plan.model_validate_json((tmp_path / "r" / "plan.json").read_text())
    assert resolved.output_dir == str(tmp_path / "r") and resolved.device == "cpu"
    assert set(result.metrics) == {"val_loss", "val_accuracy"}
    assert result.metrics["val_loss"] == history.series["val_loss"][-1]
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["epoch"] == 2 and metrics["val_accuracy"] == result.metrics["val_accuracy"]
    variables, structure = load_checkpoint(tmp_path / "r")
    assert structure["task"] == "multiclass" and "params/head/output/kernel" in structure["arrays"]
    assert variables["params"]["head"]["output"]["kernel"].shape == (16, 3)
    assert result.device.startswith("cpu")


def test_a_run_becomes_the_base_of_a_later_plan(tmp_path):
    run(make_plan(epochs=1), out_dir=tmp_path / "base")
    source, _ = load_checkpoint(tmp_path / "base")
    plan = make_plan(
        epochs=1,
        n_classes=2,
        task="multiclass",
        freeze={"strategy": "freeze_base"},
        **{"model.base": "base", "model.output_units": 2, "data.source.classes": [1, 2]},
    )
    (tmp_path / "plan.json").write_text(plan.model_dump_json())
    result = run(
        tmp_path / "plan.json", out_dir=tmp_path / "tuned"
    )  # model.base relative to the plan file
    tuned, _ = load_checkpoint(result.run_dir)
    np.testing.assert_array_equal(
        tuned["params"]["base"]["blocks_0"]["dense"]["kernel"],
        source["params"]["base"]["blocks_0"]["dense"]["kernel"],
    )
    assert tuned["params"]["head"]["output"]["kernel"].shape == (16, 2)


def test_a_base_of_another_structure_is_an_input_error(tmp_path):
    run(make_plan(epochs=1), out_dir=tmp_path / "base")
    plan = make_plan(
        freeze={"strategy": "freeze_base"},
        **{"model.base": str(tmp_path / "base"), "model.units": 8},
    )
    # one line naming the plan field that differs from the base (model.units here, or model.base)
    with pytest.raises(InputError, match=r"^model\.(units|base): .*\b16\b"):
        run(plan, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_divergence_keeps_history_and_last_good_weights(tmp_path):
    with pytest.raises(
        EngineError,
        match=r"^training diverged: loss became (nan|inf) at epoch \d+; the history so far and .* are in ",
    ):
        run(diverging_plan(), out_dir=tmp_path / "d")
    history = History.model_validate_json((tmp_path / "d" / "history.json").read_text())
    assert not np.isfinite(history.series["loss"][-1])
    assert (tmp_path / "d" / "model.safetensors").exists()  # the last good, or initial, weights
    assert not [
        p for p in (tmp_path / "d").iterdir() if p.name.startswith(".")
    ]  # no temporary files left


def test_bad_input_writes_nothing(tmp_path):
    plan = make_plan(**{"data.source": {"kind": "npz", "path": "missing.npz"}})
    with pytest.raises(InputError, match=r"^data.source.path: .*missing.npz does not exist"):
        run(plan, out_dir=tmp_path / "never")
    assert not (tmp_path / "never").exists()
    with pytest.raises(
        InputError,
        match=r"^model.base: strategy 'freeze_base' reuses a pretrained base, but the plan names none",
    ):
        run(make_plan(freeze={"strategy": "freeze_base"}), out_dir=tmp_path / "never")


@pytest.mark.slow
def test_detection_and_gan_plans_run(tmp_path):
    detection = make_plan(
        task="detection",
        modality="image",
        input_shape=[16, 16, 1],
        n_classes=4,
        n_train=96,
        epochs=2,
        metrics=["mean_iou"],
        **{
            "data.source": {
                "kind": "builtin",
                "name": "shapes_detection",
                "n_samples": 120,
                "image_size": [16, 16],
            },
            "model": {"arch": "mlp", "hidden_layers": 1, "units": 16, "output_units": 8},
            "loss": {"name": "giou", "terms": [{"name": "focal", "weight": 1.0}]},
        },
    )
    result = run(detection, out_dir=tmp_path / "det")
    assert 0.0 <= result.metrics["val_mean_iou"] <= 1.0
    gan = make_plan(DIGITS_GAN, epochs=2)
    result = run(gan, out_dir=tmp_path / "gan")
    history = History.model_validate_json((tmp_path / "gan" / "history.json").read_text())
    assert {"d_loss", "g_loss", "val_d_loss", "val_g_loss", "loss", "val_loss"} <= set(
        history.series
    )
    assert result.checkpoint is not None


def test_iris_plan_is_valid_as_a_file(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(IRIS))
    assert Plan.model_validate_json((tmp_path / "p.json").read_text()).task == "multiclass"


@pytest.mark.gpu
def test_bfloat16_mixed_precision_on_a_gpu(tmp_path):
    plan = make_plan(
        modality="image",
        input_shape=[8, 8, 1],
        n_classes=10,
        n_train=1438,
        epochs=2,
        precision="bfloat16",
        device="gpu",
        **{
            "data.source": {"kind": "builtin", "name": "digits"},
            "model": {
                "arch": "cnn",
                "filters": [8, 16],
                "kernel_size": 3,
                "pooling": "max",
                "output_units": 10,
                "batch_norm": True,
            },
        },
    )
    result = run(plan, out_dir=tmp_path / "bf16")
    assert result.device.startswith("gpu")
    history = History.model_validate_json((tmp_path / "bf16" / "history.json").read_text())
    assert history.series["loss"][-1] < history.series["loss"][0]
    weights, _ = load_checkpoint(tmp_path / "bf16")
    assert weights["params"]["base"]["blocks_0"]["conv"]["kernel"].dtype == np.float32


def test_divergence_in_the_first_epoch_keeps_the_initial_weights(tmp_path):
    from engine.nn.models import build_model
    from engine.run import initial_variables

    plan = diverging_plan(optimizer={"name": "sgd", "learning_rate": 50.0})
    with pytest.raises(EngineError, match=r"at epoch 1; .*the initial weights .* are in "):
        run(plan, out_dir=tmp_path / "d")
    variables, structure = load_checkpoint(tmp_path / "d")
    assert structure["epoch"] == 0
    network = build_model(plan.model, plan.input_shape, plan.task, impl="cpu")
    initial, _ = initial_variables(plan, network, ".", [])
    kernel = variables["params"]["head"]["output"]["kernel"]
    assert np.array_equal(kernel, np.asarray(initial["params"]["head"]["output"]["kernel"]))
