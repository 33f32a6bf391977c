"""GAN runs on the engine: sample grids, the quality record, and the GAN-specific diagnosis.

The runs are real (digits, 400 training examples, a few epochs, fixed seed, CPU): one as the
example plan has it, one with the learning rate 50 times too high (the game swings), one on
unscaled pixels (0..16, which the linear generator output cannot reach: every sample stays
near one point, the collapse the diversity measure must see), one whose generator learns at a
hundredth of the discriminator's rate (the discriminator wins).  The bundled history of the
full example run (examples/histories/engine_digits_gan) must read healthy.
"""

from __future__ import annotations

import json
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from advisor.contract.schemas import Plan
from advisor.diagnostics.diagnosis import diagnose, diagnosis_rules, write_diagnosis
from engine.optim.optimizers import set_lr_scale
from engine.run import RunOptions, run_plan
from engine.training.gan import GanPhase
from engine.training.gan_quality import QualityProbe, frechet_distance

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = json.loads((ROOT / "examples/plans/digits_gan.json").read_text())
BUNDLED = ROOT / "examples/histories/engine_digits_gan"


def _run(tmp_path_factory, name: str, epochs: int, **changes):
    plan = json.loads(json.dumps(EXAMPLE))
    plan["epochs"] = epochs
    plan["data"]["source"]["subsample"] = 400
    for path, value in changes.items():
        section, field = path.split("__")
        plan[section][field] = value
    out = tmp_path_factory.mktemp(name)
    options = RunOptions(out_dir=out, device="cpu", report=lambda _: None, diagnose=write_diagnosis)
    result = run_plan(Plan.model_validate(plan), options)
    return result, json.loads((out / "history.json").read_text()), out


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    return _run(tmp_path_factory, "gan_example", 10)


@pytest.fixture(scope="module")
def hot_run(tmp_path_factory):
    return _run(tmp_path_factory, "gan_hot", 20, optimizer__learning_rate=0.01)


@pytest.fixture(scope="module")
def unscaled_run(tmp_path_factory):
    return _run(tmp_path_factory, "gan_unscaled", 8, data__normalize="none")


@pytest.mark.slow
def test_grids_every_few_epochs_and_at_the_end(example_run):
    result, history, out = example_run
    # 10 epochs, 5 grids: every 2 epochs, then the final generator
    names = [Path(p).name for p in result.samples]
    assert names == [f"samples_epoch_{e:04d}.png" for e in (2, 4, 6, 8, 10)] + ["samples_final.png"]
    for path in result.samples:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert stat.S_IMODE(Path(path).stat().st_mode) & 0o644 == 0o644
    assert len(history["series"]["val_fd"]) == len(history["series"]["val_diversity"]) == 10


@pytest.mark.slow
def test_the_example_learns_by_its_quality_record(example_run):
    result, history, out = example_run
    fd = history["series"]["val_fd"]
    assert fd[-1] < 0.5 * fd[0]  # the samples moved toward the data
    assert 0.5 < history["series"]["val_diversity"][-1] < 1.5  # and spread like it
    diagnosis = json.loads((out / "diagnosis.json").read_text())
    names = {p["name"] for p in diagnosis["problems"]}
    # the supervised loss shapes do not apply to the two players' losses
    assert not names & {"lr_too_high", "overfitting", "underfitting", "plateau", "not_converged"}
    assert not names & {"discriminator_wins", "mode_collapse", "gan_oscillation"}


@pytest.mark.slow
def test_a_rate_far_too_high_swings_the_game(hot_run):
    result, history, out = hot_run
    diagnosis = diagnose(out / "history.json", plan=out / "plan.json")
    assert diagnosis.primary == "gan_oscillation"
    [problem] = [p for p in diagnosis.problems if p.name == "gan_oscillation"]
    assert (
        problem.evidence["curve.gan.g_loss.swing"] >= problem.evidence["threshold.gan_swing_high"]
    )
    fixes = {f.field: (f.old, f.new) for f in diagnosis.fixes}
    assert fixes["optimizer.learning_rate"] == (0.01, 0.005)


@pytest.mark.slow
def test_unscaled_pixels_collapse_the_samples(unscaled_run):
    result, history, out = unscaled_run
    assert max(history["series"]["val_diversity"]) < 0.2
    diagnosis = diagnose(out / "history.json", plan=out / "plan.json")
    assert diagnosis.primary == "mode_collapse"
    fixes = {f.field: f.new for f in diagnosis.fixes}
    assert fixes["loss.name"] == "wasserstein" and fixes["loss.params"] == {
        "gradient_penalty": 10.0
    }


@pytest.mark.slow
def test_a_discriminator_far_ahead_of_the_generator_wins(tmp_path_factory, monkeypatch):
    # Planted imbalance: once the optimizers are built, the generator's rate multiplier (the
    # engine's own, engine.optim.optimizers.set_lr_scale) is cut to a hundredth, so the
    # discriminator learns 100 times faster and separates the barely moving samples.
    begin = GanPhase.begin

    def slow_generator(self, state):
        state = begin(self, state)
        opt_state = dict(state.opt_state)
        opt_state["generator"] = set_lr_scale(opt_state["generator"], 0.01)
        return state.replace(opt_state=opt_state)

    monkeypatch.setattr(GanPhase, "begin", slow_generator)
    result, history, out = _run(tmp_path_factory, "gan_d_wins", 6)
    d_loss, g_loss = history["series"]["d_loss"], history["series"]["g_loss"]
    assert d_loss[-1] < 0.25 * d_loss[0] and g_loss[-1] > 2 * g_loss[0]
    diagnosis = diagnose(out / "history.json", plan=out / "plan.json")
    assert diagnosis.primary == "discriminator_wins"
    [problem] = [p for p in diagnosis.problems if p.name == "discriminator_wins"]
    evidence = problem.evidence
    assert evidence["curve.gan.d_loss.over_equilibrium"] <= evidence["threshold.gan_d_wins"]
    assert evidence["curve.gan.g_loss.growth"] >= evidence["threshold.gan_g_rise"]
    fixes = {f.field: f.new for f in diagnosis.fixes}
    assert fixes["loss.name"] == "wasserstein"


def test_the_bundled_example_history_reads_healthy():
    diagnosis = diagnose(BUNDLED / "history.json", plan=BUNDLED / "plan.json")
    assert diagnosis.primary == "healthy"
    assert not {p.name for p in diagnosis.problems} & {
        "discriminator_wins",
        "mode_collapse",
        "gan_oscillation",
    }
    features = diagnosis.features
    [balance] = [r.infer for r in diagnosis_rules(()) if r.id == "threshold_gan_balance"]
    # the players stay near the game's balance, far from the discriminator-wins thresholds
    assert features["curve.gan.d_loss.over_equilibrium"] > 2 * balance["threshold.gan_d_wins"]
    assert features["curve.gan.g_loss.growth"] < balance["threshold.gan_g_rise"]


def test_quality_probe_tells_data_from_noise_and_from_one_point():
    images = load_digits().images[..., None].astype(np.float32)
    images = images[np.random.default_rng(0).permutation(len(images))]  # the file is by writer
    probe = QualityProbe(images[:1200], images[1200:])
    real = probe.scores(images[:500])
    noise = probe.scores(np.random.default_rng(0).uniform(0, 16, (500, 8, 8, 1)))
    with warnings.catch_warnings():  # one point: scipy warns of a singular covariance
        warnings.simplefilter("ignore")
        one_point = probe.scores(np.repeat(images[:1], 500, axis=0))
    assert real["val_fd"] < 0.1 * noise["val_fd"]
    assert 0.9 < real["val_diversity"] < 1.1 and one_point["val_diversity"] < 1e-6
    a = np.random.default_rng(1).normal(size=(4000, 3))
    # b = 1 + 2a: mean 1 + 2 mu, covariance 4 S, so (S 4S)^1/2 = 2S and
    # FD = |1 + mu|^2 + tr(S + 4S - 4S) = |1 + mu|^2 + tr S  (about 3 + 3 for N(0, I))
    expected = np.sum((1 + a.mean(axis=0)) ** 2) + np.trace(np.cov(a, rowvar=False))
    assert frechet_distance(a, 1 + 2 * a[::-1]) == pytest.approx(expected, rel=1e-9)
