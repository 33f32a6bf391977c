"""engine.pretrained.imports: torchvision/timm ResNet state dicts -> the project's Flax ResNet (no torch needed here).

The logits-parity tests against PyTorch itself are in test_imports_parity.py.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import save_file

from advisor.cli.commands import cli
from advisor.contract.errors import InputError
from engine.nn.models import build_model
from engine.pretrained.imports import (
    convert_state_dict,
    fetch,
    hub_url,
    import_state_dict,
    infer_resnet,
    read_state_dict,
)
from engine.pretrained.transfer import read_base
from tests.engine_plans import make_plan
from tests.resnet_state import resnet_state

LAYOUTS = {
    "basic": {"widths": (4, 8), "stage_blocks": (2, 1), "block": "basic"},
    "bottleneck": {"widths": (2, 4), "stage_blocks": (1, 2), "block": "bottleneck"},
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_structure_is_read_off_the_tensor_names(layout):
    spec = LAYOUTS[layout]
    model = infer_resnet(resnet_state(**spec), "test")
    assert (model.arch, model.stem, model.block) == ("resnet", "imagenet", spec["block"])
    assert model.filters == list(spec["widths"]) and model.stage_blocks == list(
        spec["stage_blocks"]
    )
    assert model.output_units == 3 and model.head_units == []


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_tensor_lands_where_the_flax_network_expects_it(layout):
    state = resnet_state(**LAYOUTS[layout])
    model = infer_resnet(state, "test")
    variables = convert_state_dict(state, model, "test")
    network = build_model(model, [32, 32, 3], "multiclass")
    x = jax.ShapeDtypeStruct((1, 32, 32, 3), np.float32)
    fresh = jax.eval_shape(
        lambda x: network.init(jax.random.PRNGKey(0), x), x
    )  # shapes only, nothing compiled
    shapes = lambda tree: jax.tree.map(lambda a: tuple(a.shape), dict(tree))  # noqa: E731
    assert shapes(variables) == shapes({k: v for k, v in fresh.items() if k != "intermediates"})
    # OIHW -> HWIO for kernels, [out, in] -> [in, out] for the classifier, BN statistics as batch_stats
    kernel = variables["params"]["base"]["blocks_0"]["conv"]["kernel"]
    assert kernel[6, 2, 1, 1] == state["conv1.weight"][1, 1, 6, 2]
    np.testing.assert_array_equal(
        variables["params"]["head"]["output"]["kernel"], state["fc.weight"].T
    )
    np.testing.assert_array_equal(
        variables["batch_stats"]["base"]["blocks_1"]["bn1"]["var"],
        state["layer1.0.bn1.running_var"],
    )


def test_downsample_goes_to_the_projection_of_its_block():
    state = resnet_state(**LAYOUTS["basic"])
    variables = convert_state_dict(state, infer_resnet(state, "test"), "test")
    blocks = variables["params"]["base"]
    # blocks_0 is the stem; layer1 keeps its width (no projection), layer2.0 halves the size (projection)
    assert "proj" not in blocks["blocks_1"] and "proj" in blocks["blocks_3"]
    np.testing.assert_array_equal(
        blocks["blocks_3"]["proj_bn"]["scale"], state["layer2.0.downsample.1.weight"]
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("layer1.0.bn1.weight"), r"missing layer1\.0\.bn1\.weight"),
        (
            lambda s: s.update({"layer1.0.se.fc1.weight": np.ones((2, 4), np.float32)}),
            r"not understood layer1\.0\.se\.fc1\.weight",
        ),
        (
            lambda s: s.pop("conv1.weight"),
            r"is not a torchvision/timm ResNet \(no 7x7 'conv1.weight'\)",
        ),
        (
            lambda s: s.update({"layer1.0.conv2.weight": np.ones((4, 2, 3, 3), np.float32)}),
            r"stage 1 is grouped or widened",
        ),
        (lambda s: s.pop("fc.weight"), r"has no classifier 'fc.weight'"),
    ],
)
def test_a_state_dict_that_does_not_fit_is_named_key_by_key(change, message):
    state = resnet_state(**LAYOUTS["basic"])
    change(state)
    with pytest.raises(InputError, match=message):
        convert_state_dict(state, infer_resnet(state, "test"), "test")


def test_integer_tensors_and_the_dataparallel_prefix_are_dropped(tmp_path):
    state = {f"module.{k}": v for k, v in resnet_state(**LAYOUTS["basic"]).items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    read = read_state_dict(tmp_path / "w.safetensors")
    assert "conv1.weight" in read and not any(k.endswith("num_batches_tracked") for k in read)


def _write_images(path, n=24, size=16, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(0, 1, (n, size, size, 3)).astype(np.float32) + y[:, None, None, None]
    np.savez(path, x=x, y=y)


def test_an_imported_state_dict_is_a_base_for_a_run(tmp_path):
    from advisor.workflows.running import run
    from engine.outputs.checkpoint import load_checkpoint

    state = resnet_state(**LAYOUTS["basic"])
    save_file(state, str(tmp_path / "resnet.safetensors"))
    _write_images(tmp_path / "images.npz")
    model = infer_resnet(state, "test").model_dump()
    plan = make_plan(
        epochs=1,
        n_train=19,
        batch_size=19,
        modality="image",
        input_shape=[16, 16, 3],
        n_classes=2,
        freeze={"strategy": "freeze_base"},
        data={"source": {"kind": "npz", "path": str(tmp_path / "images.npz")}},
        model={**model, "output_units": 2, "base": str(tmp_path / "resnet.safetensors")},
    )
    result = run(plan, out_dir=tmp_path / "run")
    tuned, structure = load_checkpoint(result.run_dir)
    converted, _ = import_state_dict(tmp_path / "resnet.safetensors")
    np.testing.assert_array_equal(
        tuned["params"]["base"]["blocks_2"]["conv2"]["kernel"],
        converted["params"]["base"]["blocks_2"]["conv2"]["kernel"],
    )
    assert structure["model"]["stem"] == "imagenet" and tuned["params"]["head"]["output"][
        "kernel"
    ].shape == (8, 2)


def test_hub_weights_are_downloaded_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVISOR_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "published.safetensors"
    save_file(resnet_state(**LAYOUTS["bottleneck"]), str(source))
    first = fetch("timm:resnet_tiny.test", url=source.as_uri())
    source.unlink()  # a second fetch must not need the network
    assert fetch("timm:resnet_tiny.test", url=source.as_uri()) == first
    assert first.parent == tmp_path / "cache" / "weights" and first.suffix == ".safetensors"
    assert infer_resnet(read_state_dict(first), "cached").block == "bottleneck"


def test_hub_names_and_a_failed_download():
    assert (
        hub_url("torchvision:resnet18")
        == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    )
    assert (
        hub_url("timm:resnet50.a1_in1k")
        == "https://huggingface.co/timm/resnet50.a1_in1k/resolve/main/model.safetensors"
    )
    with pytest.raises(
        InputError, match=r"^model.base: 'resnet19' is not a torchvision ResNet with known weights"
    ):
        hub_url("torchvision:resnet19")
    with pytest.raises(
        InputError, match=r"^model.base: could not download timm:nothing from file:.*when offline"
    ):
        fetch("timm:nothing", url="file:///nonexistent/model.safetensors")


def test_import_base_command_writes_a_checkpoint_directory(tmp_path):
    save_file(resnet_state(**LAYOUTS["basic"]), str(tmp_path / "w.safetensors"))
    result = CliRunner().invoke(
        cli, ["import-base", str(tmp_path / "w.safetensors"), "-o", str(tmp_path / "base")]
    )
    assert result.exit_code == 0, result.output
    assert "resnet (basic blocks [2, 1], widths [4, 8], 3 outputs)" in result.output
    _, structure, _ = read_base(str(tmp_path / "base"))
    assert structure["model"]["stage_blocks"] == [2, 1] and structure["input_shape"] == [
        224,
        224,
        3,
    ]
    missing = CliRunner().invoke(
        cli, ["import-base", str(tmp_path / "none.pth"), "-o", str(tmp_path / "x")]
    )
    assert (
        missing.exit_code == 2
        and "does not exist" in missing.output
        and not (tmp_path / "x").exists()
    )
