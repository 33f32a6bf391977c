"""Fixes: each problem changes the plan as rules/60_fixes.toml says, the next plan
differs from the old one exactly in the fixed fields, and each fixed field is
explained by the rule that fixed it."""

from __future__ import annotations

import pytest
from diagnosis_support import HISTORIES, hand, labelled, plan

from advisor.contract.plan_paths import flatten
from advisor.diagnostics.diagnosis import revise_plan
from advisor.readers import load_history


def revise(stem: str, **plan_changes):
    """Revise the plan on the collection's history named ``stem`` (any format)."""
    diagnosis, next_plan = revise_plan(hand(stem), plan(**plan_changes))
    return diagnosis, next_plan, {fix.field: fix for fix in diagnosis.fixes}


def _leaves(model) -> dict:
    data = model.model_dump(mode="json", exclude={"explanations", "derived_facts"})
    return {k: v for k, v in flatten("", data).items() if not isinstance(v, dict)}


def assert_changed_exactly_in_fixed_fields(old, new, fixes):
    before, after = _leaves(old), _leaves(new)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    fields = [fix.field for fix in fixes]
    for key in changed:
        assert any(key == f or key.startswith(f + ".") for f in fields), (
            f"{key} changed without a fix"
        )
    for fix in fixes:
        assert new.explanations[fix.field].rule == fix.rule
        assert new.explanations[fix.field].reason.startswith(f"{fix.problem}: ")


SAMPLE = sorted(labelled())[::3]


@pytest.mark.parametrize("rel", SAMPLE)
def test_next_plan_differs_exactly_in_the_fixed_fields(rel):
    info = labelled()[rel]
    old = (
        plan(task="regression", n_classes=None, **{"model.output_units": 1})
        if info["task"] == "regression"
        else plan()
    )
    diagnosis, new = revise_plan(load_history(HISTORIES / rel), old)
    assert_changed_exactly_in_fixed_fields(old, new, diagnosis.fixes)
    untouched = set(old.explanations) - {f.field for f in diagnosis.fixes}
    assert all(new.explanations[k] == old.explanations[k] for k in untouched)
    if {p.name for p in diagnosis.problems} <= {"healthy"}:
        assert diagnosis.fixes == [] and new == old


def test_mild_overfitting_gets_the_cheap_cures_only():
    d, new, fixes = revise("overfitting_gap_00")
    assert [p.name for p in d.problems] == ["overfitting"]
    assert set(fixes) == {"regularization.early_stopping", "model.dropout"}
    assert new.regularization.early_stopping.restore_best is True
    assert (new.optimizer.name, new.regularization.augmentation) == ("adam", [])


def test_overfitting_again_after_the_cheap_cures_gets_the_full_bundle():
    spent = {"model.dropout": 0.5, "regularization.early_stopping": EARLY_STOP}
    _, new, fixes = revise("overfitting_gap_00", **spent)
    assert set(fixes) == {"optimizer.name", "optimizer.weight_decay", "regularization.augmentation"}
    explanation = new.explanations["optimizer.weight_decay"]
    assert explanation.matched["diagnosis.overfitting_strong"] is True


def test_an_unstable_run_gets_the_optimisation_fixed_first():
    """lr far too high, best epoch 1, then the validation loss wobbling up: no overfitting."""
    d, _, fixes = revise("lr_too_high_stopped_03")  # 10 classes, as plan()
    assert [p.name for p in d.problems] == ["lr_too_high"]
    assert set(fixes) == {
        "optimizer.learning_rate",
        "optimizer.clip_norm",
        "schedule.warmup_epochs",
    }


def test_overfitting_beside_instability_is_named_but_its_fixes_wait():
    d, _, fixes = revise("lr_too_high_overfitting_02")  # 10 classes, as plan()
    assert {p.name for p in d.problems} == {"lr_too_high", "overfitting"}
    assert all(fix.problem == "lr_too_high" for fix in fixes.values()), fixes
    assert [a.name for a in d.advice] == ["stabilise_first"]


def test_strong_overfitting_images_adam():
    d, new, fixes = revise("overfitting_rise_00")
    assert [p.name for p in d.problems] == ["overfitting"]
    assert fixes["model.dropout"].new == pytest.approx(0.5)  # strong: straight to 0.5
    assert fixes["model.dropout"].rule == "fix_overfitting_dropout_strong"
    assert fixes["optimizer.name"].new == "adamw"
    assert fixes["optimizer.weight_decay"].new == pytest.approx(0.01)
    assert [a.name for a in new.regularization.augmentation] == ["shift", "rotate"]
    stop = new.regularization.early_stopping
    assert (stop.monitor, stop.restore_best, stop.patience) == ("val_loss", True, 5)  # 15 % of 30
    assert [a.name for a in d.advice] == ["more_data"]


def test_overfitting_tables_sgd_and_early_stopping_that_kept_the_last_weights():
    early = {
        "monitor": "val_loss",
        "mode": "min",
        "patience": 25,
        "min_delta": 0.0,
        "restore_best": False,
    }
    _, new, fixes = revise(
        "overfitting_rise_01",
        modality="tabular",
        input_shape=[30],
        **{
            "optimizer.name": "sgd",
            "optimizer.momentum": 0.9,
            "regularization.early_stopping": early,
        },
    )
    assert [a.model_dump() for a in new.regularization.augmentation] == [
        {"name": "noise", "strength": 0.05}
    ]
    assert fixes["optimizer.weight_decay"].new == pytest.approx(5e-4)
    assert new.regularization.early_stopping.restore_best is True
    assert new.regularization.early_stopping.patience == 25
    assert "regularization.early_stopping" not in fixes


@pytest.mark.parametrize(
    ("freeze", "expected"),
    [
        ({"strategy": "full_fine_tune"}, {"strategy": "partial_fine_tune", "trainable_blocks": 1}),
        (
            {"strategy": "partial_fine_tune", "trainable_blocks": 3},
            {"strategy": "partial_fine_tune", "trainable_blocks": 2},
        ),
        (
            {"strategy": "partial_fine_tune", "trainable_blocks": 1},
            {"strategy": "freeze_base", "trainable_blocks": 1},
        ),
    ],
)
def test_strong_overfitting_freezes_more_of_the_base(freeze, expected):
    _, new, _ = revise("overfitting_rise_00", freeze=freeze, **{"model.base": "runs/base"})
    assert new.freeze.model_dump(include=set(expected)) == expected


def test_a_feature_extractor_gets_no_augmentation_it_could_not_apply():
    """Its base features are computed once from the raw inputs (the engine refuses both)."""
    _, new, fixes = revise(
        "overfitting_rise_00",
        freeze={"strategy": "feature_extractor"},
        **{"model.base": "runs/base"},
    )
    assert "regularization.augmentation" not in fixes and new.regularization.augmentation == []
    assert {"optimizer.weight_decay", "model.dropout"} <= set(fixes)


def test_underfitting_grows_an_mlp_and_cuts_heavy_dropout():
    _, new, fixes = revise(
        "underfitting_poor_00",
        **{"model.units": 16, "model.hidden_layers": 1, "model.dropout": 0.5},
    )
    assert (new.model.units, new.model.hidden_layers) == (64, 2)
    assert new.model.dropout == pytest.approx(0.25)
    assert fixes["model.units"].problem == "underfitting"


def test_underfitting_doubles_cnn_filters_and_unfreezes():
    model = {
        "arch": "cnn",
        "filters": [8, 16],
        "kernel_size": 3,
        "pooling": "max",
        "output_units": 10,
    }
    _, new, _ = revise("underfitting_chance_00", model=model, freeze={"strategy": "freeze_base"})
    assert new.model.filters == [16, 32]
    assert (new.freeze.strategy, new.freeze.trainable_blocks) == ("partial_fine_tune", 1)


def test_underfitting_deepens_a_resnet():
    model = {"arch": "resnet", "filters": [16, 32], "blocks_per_stage": 1, "output_units": 10}
    _, new, _ = revise("underfitting_poor_01", model=model)
    assert (new.model.blocks_per_stage, new.model.filters) == (2, [32, 64])


def test_lr_too_high_lowers_the_rate_warms_up_clips_and_doubles_small_batches():
    d, new, fixes = revise("lr_too_high_oscillating_00", batch_size=8, steps_per_epoch=175)
    assert {p.name for p in d.problems} == {"lr_too_high"}
    assert new.optimizer.learning_rate == pytest.approx(3e-4)
    assert (new.optimizer.clip_norm, new.schedule.warmup_epochs) == (1.0, 2)
    assert (new.batch_size, new.steps_per_epoch) == (16, 88)
    assert fixes["steps_per_epoch"].rule == "fix_steps_per_epoch_follow_batch_size"


def test_divergence_wins_the_learning_rate_and_the_loser_is_explained():
    """NaN at epoch 27 after the validation loss fell by three quarters: the rate sat just
    above the stable edge, so it is cut threefold, not tenfold."""
    d, new, fixes = revise("diverged_nan_00", precision="bfloat16")
    assert {p.name for p in d.problems} == {"diverged", "lr_too_high"}
    assert new.optimizer.learning_rate == pytest.approx(3e-4)
    explanation = new.explanations["optimizer.learning_rate"]
    assert explanation.rule == "fix_diverged_after_learning"
    assert {o.rule for o in explanation.overridden} == {
        "fix_diverged_lower_lr",
        "fix_lr_too_high_lower",
    }
    assert new.precision == "float32" and new.optimizer.clip_norm == 1.0
    assert {a.name for a in d.advice} == {"check_data"}


def test_a_run_that_blew_up_before_it_learned_gets_a_tenfold_cut():
    d, new, fixes = revise("diverged_nan_07")  # NaN at epoch 4, validation loss down 28 %
    assert "diverged" in {p.name for p in d.problems}
    assert new.optimizer.learning_rate == pytest.approx(1e-4)
    assert fixes["optimizer.learning_rate"].rule == "fix_diverged_lower_lr"


def test_lr_too_low_raises_the_rate_instead_of_adding_epochs():
    d, new, fixes = revise("lr_too_low_00")
    assert "lr_too_low" in {p.name for p in d.problems}
    assert new.optimizer.learning_rate in (pytest.approx(3e-3), pytest.approx(1e-2))
    assert "epochs" not in fixes
    assert {a.name for a in d.advice} == {"lr_range_test"}


def test_not_converged_doubles_the_epochs_of_a_run_that_used_them_all():
    _, new, fixes = revise("not_converged_00", epochs=23)  # the history's length
    assert new.epochs == 46 and set(fixes) == {"epochs"}


EARLY_STOP = {
    "monitor": "val_loss",
    "mode": "min",
    "patience": 5,
    "min_delta": 0.0,
    "restore_best": True,
}


def test_a_run_early_stopping_ended_gets_patience_not_epochs():
    """63 of 200 epochs: more epochs cannot change a run that stopped itself."""
    d, new, fixes = revise(
        "stopped_on_noise_01", epochs=200, **{"regularization.early_stopping": EARLY_STOP}
    )
    assert [p.name for p in d.problems] == ["not_converged"]
    assert set(fixes) == {"regularization.early_stopping.patience"} and new.epochs == 200
    assert new.regularization.early_stopping.patience == 10
    assert "noise" in new.explanations["regularization.early_stopping.patience"].reason
    _, patient, fixes = revise(
        "stopped_on_noise_01",
        epochs=200,
        **{"regularization.early_stopping": {**EARLY_STOP, "patience": 50}},
    )
    assert fixes == {} and patient.regularization.early_stopping.patience == 50


def test_a_run_cut_short_without_early_stopping_is_told_to_finish():
    d, new, fixes = revise("not_converged_00", epochs=200)
    assert fixes == {} and new.epochs == 200
    assert [a.name for a in d.advice] == ["finish_run"]


def test_plateau_fixes_depend_on_where_it_sat_and_the_optimizer():
    _, at_start, _ = revise("plateau_start_00", **{"optimizer.name": "sgd"})
    assert (at_start.schedule.name, at_start.schedule.cycle_epochs) == ("cosine_restarts", 8)
    assert (at_start.optimizer.momentum, at_start.optimizer.nesterov) == (0.9, True)
    _, mid, _ = revise("plateau_mid_00")
    assert (mid.schedule.name, mid.schedule.factor) == ("reduce_on_plateau", 0.5)
    assert 2 <= mid.schedule.patience <= 10
    _, full_batch, _ = revise(
        "plateau_mid_01", batch_size=1400, steps_per_epoch=1, **{"optimizer.name": "gd"}
    )
    assert (full_batch.optimizer.name, full_batch.batch_size, full_batch.steps_per_epoch) == (
        "sgd",
        32,
        44,
    )


def test_gradient_problems():
    d, new, fixes = revise("exploding_spikes_00")
    assert new.optimizer.clip_norm == pytest.approx(fixes["optimizer.clip_norm"].new)
    assert 0.5 < new.optimizer.clip_norm < 3
    if "lr_too_high" in {p.name for p in d.problems}:  # the rate explains the spikes: one change
        assert new.model.batch_norm is False and new.optimizer.learning_rate < 1e-3
    else:
        assert new.model.batch_norm is True
    d, new, _ = revise("vanishing_00", **{"model.activation": "sigmoid"})
    assert (new.model.activation, new.model.batch_norm) == ("relu", True)
    assert {a.name for a in d.advice} == {"he_init"}
    _, new, _ = revise("dead_units_00")
    assert new.model.activation == "leaky_relu"
    assert new.optimizer.learning_rate == pytest.approx(3e-4)


def test_healthy_changes_nothing():
    d, new, _ = revise("healthy_00")
    assert [p.name for p in d.problems] == ["healthy"]
    assert d.fixes == [] and new == plan()


def _fixed(facts: dict) -> dict:
    """The plan fields the fix rules set on bare facts (problems and plan values)."""
    from advisor.diagnostics.diagnosis import diagnosis_rules
    from advisor.expert.inference import infer

    return {k: d.value for k, d in infer(facts, diagnosis_rules(())).plan_fields().items()}


def test_batch_norm_for_exploding_gradients_only_when_the_rate_is_not_the_cause():
    alone = {
        "problem.exploding_gradients": True,
        "plan.model.batch_norm": False,
        "plan.batch_size": 32,
    }
    assert _fixed(alone)["model.batch_norm"] is True
    assert "model.batch_norm" not in _fixed({**alone, "problem.lr_too_high": True})
    assert "model.batch_norm" not in _fixed({**alone, "plan.batch_size": 2})


def test_a_run_too_short_to_judge_gets_more_epochs():
    """A 3-epoch run: whatever the diagnosis makes of it, the next plan trains longer."""
    short = {"loss": [2.3, 1.6, 1.2], "val_loss": [2.2, 1.7, 1.4], "accuracy": [0.2, 0.5, 0.65]}
    d, new = revise_plan(short, plan(epochs=3))
    assert new.epochs == 20 and new != plan(epochs=3)
    (fix,) = [f for f in d.fixes if f.field == "epochs"]
    assert fix.rule == "fix_short_run_more_epochs" and fix.problem != "healthy"


def test_heavy_dropout_is_cut_before_the_rate_when_the_loss_oscillates():
    heavy = {"problem.lr_too_high": True, "before.model.dropout": 0.9, "plan.model.dropout": 0.9}
    fixed = _fixed({**heavy, "plan.optimizer.learning_rate": 1e-3})
    assert fixed["model.dropout"] == pytest.approx(0.45)
    assert "optimizer.learning_rate" not in fixed
    light = _fixed(
        {
            **heavy,
            "before.model.dropout": 0.2,
            "plan.model.dropout": 0.2,
            "plan.optimizer.learning_rate": 1e-3,
        }
    )
    assert light["optimizer.learning_rate"] == pytest.approx(3e-4) and "model.dropout" not in light


def test_a_tiny_batch_that_oscillates_gets_a_larger_batch_not_a_lower_rate():
    """Batch 1 with plain SGD: the noise is the batch's, so the batch grows and the rate stays;
    a batch of 8 or more keeps the usual threefold cut, and a divergence still cuts the rate."""
    tiny = {
        "problem.lr_too_high": True,
        "before.model.dropout": 0.0,
        "plan.optimizer.name": "sgd",
        "plan.optimizer.learning_rate": 0.1,
        "before.batch_size": 1,
        "plan.batch_size": 1,
    }
    fixed = _fixed(tiny)
    assert fixed["batch_size"] == 16 and "optimizer.learning_rate" not in fixed
    usual = _fixed({**tiny, "before.batch_size": 8, "plan.batch_size": 8})
    assert usual["optimizer.learning_rate"] == pytest.approx(0.03) and usual["batch_size"] == 16
    diverged = _fixed({**tiny, "problem.diverged": True})
    assert diverged["optimizer.learning_rate"] < 0.1 and "batch_size" not in diverged


def test_a_schedule_that_decays_to_zero_at_once_is_replaced():
    fixed = _fixed(
        {
            "problem.plateau": True,
            "plan.schedule.name": "exponential",
            "plan.schedule.factor": 0.01,
            "plan.epochs": 30,
            "curve.loss.plateau_start": 4,
            "curve.first_epoch": 1,
        }
    )
    assert fixed["schedule.name"] == "cosine"


def test_memorised_at_the_best_epoch_gets_the_full_bundle():
    fixed = _fixed(
        {
            "problem.overfitting": True,
            "curve.gap.at_val_best": 0.95,
            "plan.optimizer.name": "adam",
            "plan.modality": "tabular",
            "plan.regularization.augmentation": [],
            "before.freeze.strategy": "from_scratch",
            "plan.model.dropout": 0.0,
            "plan.epochs": 80,
        }
    )
    assert fixed["optimizer.name"] == "adamw" and fixed["regularization.augmentation"]


UNSTABLE = {"lr_too_high", "diverged", "exploding_gradients"}


@pytest.mark.parametrize("rel", sorted(labelled())[1::3])  # a third; SAMPLE is another
def test_no_fix_works_against_the_problems_found(rel):
    """Never a higher rate after a sign of instability, never a smaller network or a
    stronger regulariser for underfitting; while unstable, no capacity change at all."""
    info = labelled()[rel]
    old = (
        plan(task="regression", n_classes=None, **{"model.output_units": 1})
        if info["task"] == "regression"
        else plan()
    )
    d, new = revise_plan(load_history(HISTORIES / rel), old)
    found = {p.name for p in d.problems}
    if found & UNSTABLE:
        assert new.optimizer.learning_rate <= old.optimizer.learning_rate
        assert (new.model.units, new.model.hidden_layers) == (
            old.model.units,
            old.model.hidden_layers,
        )
    if found & {"lr_too_high", "diverged"}:
        assert new.optimizer.learning_rate < old.optimizer.learning_rate
    if "underfitting" in found:
        assert new.model.units >= old.model.units
        assert new.model.hidden_layers >= old.model.hidden_layers
        assert new.model.dropout <= old.model.dropout
        assert new.optimizer.weight_decay <= old.optimizer.weight_decay
    if "overfitting" in found:
        assert new.model.units <= old.model.units and new.model.dropout >= old.model.dropout
    if found - {"healthy", "inconclusive"}:  # every finding is acted on: a plan change or advice
        assert d.fixes or d.advice, (found, rel)


@pytest.mark.parametrize("cause", ["lr_too_low", "dead_units", "vanishing_gradients"])
def test_underfitting_with_a_named_cause_fixes_the_cause_not_the_size(cause):
    facts = {
        "problem.underfitting": True,
        "plan.model.arch": "mlp",
        "plan.model.units": 64,
        "plan.model.hidden_layers": 2,
        "plan.model.activation": "sigmoid",
        "plan.model.batch_norm": False,
        "plan.optimizer.learning_rate": 1e-5,
    }
    assert _fixed(facts)["model.units"] == 256
    fixed = _fixed({**facts, f"problem.{cause}": True})
    assert "model.units" not in fixed and "model.hidden_layers" not in fixed
    assert fixed  # the cause itself is fixed
