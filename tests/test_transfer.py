"""Transfer learning end to end: every freeze strategy through ``advisor.run``, the base-structure
contract, where model.base is looked up, cached features, and the plans the rules write for a base."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from advisor.contract.errors import InputError
from advisor.contract.schemas import ModelPlan, Profile
from advisor.expert.recommending import recommend
from advisor.workflows.running import run
from engine.nn.models import build_model, init_variables
from engine.outputs.checkpoint import load_checkpoint, save_checkpoint
from engine.pretrained.transfer import check_structure, load_base, read_base, resolve_base
from tests.engine_plans import DIGITS_CNN, make_plan
from tests.test_freeze import (  # two dense blocks with BatchNorm: runs compile in seconds
    MLP_BN,
    TRANSFER_FIELDS,
)

FIELDS = TRANSFER_FIELDS  # each strategy's freeze fields
# After the whole run: which base blocks (of 2) still hold the base's exact weights and statistics.
UNTOUCHED = {
    "from_scratch": (),
    "full_fine_tune": (),
    "partial_fine_tune": ("blocks_0",),
    "freeze_base": ("blocks_0", "blocks_1"),
    "feature_extractor": ("blocks_0", "blocks_1"),
    "two_stage": (),
}


@pytest.fixture(scope="module")
def mlp_base(tmp_path_factory) -> tuple[Path, dict]:
    """A checkpoint of the MLP_BN structure, unlike a fresh initialisation, as an earlier run leaves it."""
    folder = tmp_path_factory.mktemp("base")
    plan = make_plan(**MLP_BN)
    network = build_model(plan.model, plan.input_shape, plan.task)
    variables = init_variables(network, jax.random.PRNGKey(7), plan.input_shape)
    variables = jax.tree.map(lambda a: np.asarray(a) + 0.25, variables)
    save_checkpoint(
        folder, variables, {"model": plan.model.model_dump(), "input_shape": plan.input_shape}
    )
    return folder, variables


def _transfer_plan(strategy: str, base: Path, **changes):
    return make_plan(
        epochs=3,
        freeze={"strategy": strategy, **FIELDS[strategy]},
        **{"model.base": None if strategy == "from_scratch" else str(base), **MLP_BN, **changes},
    )


def _same(a: dict, b: dict) -> bool:
    return jax.tree.all(jax.tree.map(np.array_equal, a, b))


@pytest.mark.slow
@pytest.mark.parametrize("strategy", list(FIELDS))
def test_every_strategy_runs_and_leaves_exactly_the_frozen_parts_untouched(
    strategy, mlp_base, tmp_path
):
    base_dir, base = mlp_base
    result = run(_transfer_plan(strategy, base_dir), out_dir=tmp_path / "run")
    tuned, _ = load_checkpoint(result.run_dir)
    for block in ("blocks_0", "blocks_1"):
        untouched = _same(tuned["params"]["base"][block], base["params"]["base"][block]) and _same(
            tuned["batch_stats"]["base"][block], base["batch_stats"]["base"][block]
        )
        assert untouched == (block in UNTOUCHED[strategy]), (strategy, block)
    assert (
        tuned["params"]["head"]["output"]["kernel"].shape
        == base["params"]["head"]["output"]["kernel"].shape
    )
    assert result.metrics["val_accuracy"] > 0
    if (
        strategy == "two_stage"
    ):  # the head stage at the plan's rate, then the fine-tuning stage at a tenth
        lr = json.loads(Path(result.history).read_text())["series"]["lr"]
        assert lr[0] == pytest.approx(0.01) and max(lr[1:]) == pytest.approx(0.001, rel=1e-3)


@pytest.mark.slow
def test_cached_features_teach_the_head_what_freeze_base_does(mlp_base, tmp_path):
    base_dir, base = mlp_base
    runs = {
        s: run(_transfer_plan(s, base_dir, **{"model.dropout": 0.2}), out_dir=tmp_path / s)
        for s in ("freeze_base", "feature_extractor")
    }
    (frozen, _), (cached, _) = (
        load_checkpoint(runs[s].run_dir) for s in ("freeze_base", "feature_extractor")
    )
    # same batches, same dropout keys, same frozen features: the same head, to float rounding
    for a, b in zip(
        jax.tree.leaves(frozen["params"]["head"]),
        jax.tree.leaves(cached["params"]["head"]),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert _same(cached["params"]["base"], base["params"]["base"]) and _same(
        cached["batch_stats"], base["batch_stats"]
    )
    histories = {s: json.loads(Path(r.history).read_text())["series"] for s, r in runs.items()}
    np.testing.assert_allclose(
        histories["feature_extractor"]["val_loss"], histories["freeze_base"]["val_loss"], rtol=1e-4
    )


def test_cached_features_cannot_be_augmented(mlp_base, tmp_path):
    plan = _transfer_plan(
        "feature_extractor",
        mlp_base[0],
        **{"regularization.augmentation": [{"name": "noise", "strength": 0.1}]},
    )
    with pytest.raises(
        InputError,
        match=r"^regularization.augmentation: feature_extractor computes the base's features once",
    ):
        run(plan, out_dir=tmp_path / "never")
    assert not (tmp_path / "never").exists()


# ----------------------------------------------------------------------------- the structure contract

CNN_BASE = {
    "model": {
        "arch": "cnn",
        "filters": [32, 64],
        "kernel_size": 3,
        "pooling": "max",
        "batch_norm": True,
        "output_units": 5,
    },
    "input_shape": [8, 8, 1],
}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"model.filters": [16, 32]},
            r"^model.filters: \[16, 32\], but the base b was built with \[32, 64\]; set model.filters to \[32, 64\]",
        ),
        ({"model.kernel_size": 5}, r"^model.kernel_size: 5, but the base b was built with 3"),
        (
            {"model.batch_norm": False},
            r"^model.batch_norm: False, but the base b was built with True",
        ),
        (
            {"model.arch": "mlp", "model.hidden_layers": 1, "model.units": 8},
            r"^model.arch: 'mlp', but the base b is a 'cnn'",
        ),
        (
            {"input_shape": [8, 8, 3]},
            r"^input_shape: \[8, 8, 3\], but the base b was trained on \[8, 8, 1\]; expected 2-D inputs with 1 channel",
        ),
    ],
)
def test_a_plan_must_keep_the_structure_of_its_base(changes, message):
    plan = make_plan(DIGITS_CNN, **{"model.filters": [32, 64], "model.base": "b", **changes})
    with pytest.raises(InputError, match=message):
        check_structure(plan, CNN_BASE, "b")


def test_the_head_and_a_larger_image_are_free():
    plan = make_plan(
        DIGITS_CNN,
        input_shape=[16, 16, 1],
        **{
            "model.filters": [32, 64],
            "model.head_units": [7],
            "model.dropout": 0.4,
            "model.base": "b",
        },
    )
    check_structure(
        plan, CNN_BASE, "b"
    )  # convolutions do not care about the image size; the head is new


def test_resnet_blocks_compare_as_built_however_written():
    base = {
        "model": {"arch": "resnet", "filters": [8, 16], "stage_blocks": [2, 2], "output_units": 3}
    }
    plan = make_plan(
        DIGITS_CNN,
        **{
            "model": {
                "arch": "resnet",
                "filters": [8, 16],
                "blocks_per_stage": 2,
                "output_units": 10,
                "base": "b",
            }
        },
    )
    check_structure(plan, base, "b")
    deeper = make_plan(
        DIGITS_CNN,
        **{
            "model": {
                "arch": "resnet",
                "filters": [8, 16],
                "blocks_per_stage": 3,
                "output_units": 10,
                "base": "b",
            }
        },
    )
    with pytest.raises(
        InputError, match=r"^model.stage_blocks: \[3, 3\], but the base b was built with \[2, 2\]"
    ):
        check_structure(deeper, base, "b")


def test_model_base_is_looked_up_beside_the_plan_then_in_the_working_directory(
    tmp_path, monkeypatch
):
    (tmp_path / "plans" / "runs" / "near").mkdir(parents=True)
    (tmp_path / "runs" / "far").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert resolve_base("runs/near", tmp_path / "plans") == tmp_path / "plans" / "runs" / "near"
    assert resolve_base("runs/far", tmp_path / "plans") == Path("runs/far")
    assert resolve_base("torchvision:resnet18", tmp_path) == "torchvision:resnet18"
    with pytest.raises(
        InputError,
        match=r"^model.base: .*runs/far holds no model.safetensors; build the base first \(advisor pretrain",
    ):
        read_base("runs/far", tmp_path / "plans")


def test_load_base_reads_and_checks(mlp_base):
    plan = _transfer_plan("freeze_base", mlp_base[0])
    variables, structure, where = load_base(plan)
    assert where == str(mlp_base[0]) and structure["input_shape"] == [4]
    with pytest.raises(InputError, match=r"^model.units: 8, but the base"):
        load_base(_transfer_plan("freeze_base", mlp_base[0], **{"model.units": 8}))


# ----------------------------------------------------------------------------- the rules

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "profiles"
# quadrant -> (the strategy the plan trains with, the lecture's choice: the first stage, the rule that lost to it)
QUADRANTS = {
    "transfer_large_similar": ("two_stage", "freeze_base", "freeze_large_similar_freeze_base"),
    "transfer_large_different": ("from_scratch", "from_scratch", None),
    "transfer_small_similar": ("feature_extractor", "feature_extractor", None),
    "transfer_small_different": (
        "two_stage",
        "partial_fine_tune",
        "freeze_small_different_partial",
    ),
}


@pytest.mark.parametrize("name", QUADRANTS)
def test_each_quadrant_example_starts_with_the_lectures_strategy_and_keeps_the_bases_structure(
    name,
):
    from engine.optim.freeze import stages_for

    profile = Profile.model_validate_json((EXAMPLES / f"{name}.json").read_text())
    plan = recommend(profile)
    strategy, lecture, overridden = QUADRANTS[name]
    assert plan.freeze.strategy == strategy
    assert plan.derived_facts["transfer_quadrant"].value == name.removeprefix("transfer_")
    if (
        overridden
    ):  # refined by measurement: the lecture's choice is the first stage, then all layers train
        assert [o.rule for o in plan.explanations["freeze.strategy"].overridden] == [overridden]
        assert "benchmarks/RESULTS.md" in plan.explanations["freeze.strategy"].source
        first, second = stages_for(plan, 2)
        assert (
            first.frozen_blocks == {"freeze_base": 2, "partial_fine_tune": 1}[lecture]
            and second.frozen_blocks == 0
        )
        assert second.rate_factor == 1.0
    if plan.freeze.strategy == "from_scratch":  # no base loaded: the structure is sized to the data
        assert plan.model.base is None
        return
    assert plan.model.base == profile.pretrained.base
    check_structure(
        plan,
        {
            "model": profile.pretrained.model.model_dump(),
            "input_shape": profile.pretrained.input_shape,
        },
        "b",
    )
    assert plan.explanations["model.filters"].rule == "transfer_backbone_cnn"


def test_an_imported_resnet_base_is_planned_with_its_own_layout():
    resnet18 = ModelPlan(
        arch="resnet",
        filters=[64, 128, 256, 512],
        stage_blocks=[2, 2, 2, 2],
        stem="imagenet",
        output_units=1000,
    )
    plan = recommend(
        {
            "task": "multiclass",
            "modality": "image",
            "n_train": 3000,
            "input_shape": [64, 64, 3],
            "n_classes": 10,
            "pretrained": {
                "base": "torchvision:resnet18",
                "similarity": 0.9,
                "model": resnet18.model_dump(exclude_none=True),
            },
        }
    )
    assert (plan.model.arch, plan.model.stem, plan.model.stage_blocks, plan.model.head_units) == (
        "resnet",
        "imagenet",
        [2, 2, 2, 2],
        [],
    )
    check_structure(
        plan, {"model": resnet18.model_dump(), "input_shape": [224, 224, 3]}, "torchvision:resnet18"
    )


def test_two_stage_with_trainable_blocks_starts_as_partial_fine_tuning():
    from engine.optim.freeze import stages_for

    plan = make_plan(
        DIGITS_CNN,
        epochs=5,
        freeze={
            "strategy": "two_stage",
            "trainable_blocks": 1,
            "head_epochs": 2,
            "fine_tune_lr_factor": 1.0,
            "layer_lr_decay": 0.38,
        },
    )
    first, second = stages_for(plan, 2)
    assert (first.epochs, first.frozen_blocks, second.epochs, second.frozen_blocks) == (2, 1, 3, 0)
    with pytest.raises(
        InputError, match=r"^freeze.trainable_blocks: 3 is more than the 2 blocks of the base"
    ):
        stages_for(
            plan.model_copy(
                update={"freeze": plan.freeze.model_copy(update={"trainable_blocks": 3})}
            ),
            2,
        )


# ----------------------------------------------------------------------------- validation in chunks


def test_chunked_validation_equals_the_whole_set_at_once(monkeypatch):
    """Evaluation gathers, pads and joins its chunks inside jit; the numbers are the plain ones."""
    import jax.numpy as jnp
    import optax

    import engine.training.train as train
    from engine.optim.losses import build_loss

    monkeypatch.setattr(train, "EVAL_CHUNK", 16)  # 45 examples: chunks of 16, 16 and 13 (padded)
    plan = make_plan(**MLP_BN)
    network = build_model(plan.model, plan.input_shape, plan.task)
    variables = init_variables(network, jax.random.PRNGKey(0), plan.input_shape)
    x = jax.random.normal(jax.random.PRNGKey(1), (45, 4))
    y = jnp.arange(45) % 3
    config = train.StepConfig(plan.task, plan.loss.name, plan.n_classes)
    metrics = train.make_metrics(["accuracy"], plan.task)
    evaluate = train.make_evaluate(network, build_loss(plan.loss), config, metrics, 45)
    scores = evaluate(variables, x, y)
    logits = network.apply(variables, x, train=False)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    assert float(scores["val_loss"]) == pytest.approx(float(loss), rel=1e-5)
    accuracy = float(jnp.mean(jnp.argmax(logits, 1) == y))
    assert float(scores["val_accuracy"]) == pytest.approx(accuracy)
