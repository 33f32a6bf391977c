"""One training path: every kind of run is built as one ``Trainer`` from one ``TrainState.start``.

``engine.run.build_trainer`` picks the path (in-memory or streamed supervised,
feature cache, GAN); each is trained here for one epoch through ``engine.training.fit``.
A population's trials start from the very state a lone run starts from.
``RunOptions`` is the one frozen value ``run_plan`` takes.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import jax
import numpy as np
import pytest
from sklearn.datasets import load_iris

from advisor.contract.schemas import Plan
from engine.datasets.data import load_data
from engine.nn.models import build_model, init_variables
from engine.outputs.checkpoint import save_checkpoint
from engine.run import RunOptions, build_trainer
from engine.searching.population import Population
from engine.searching.trials import train_trials
from engine.training.fit import Trainer, fit
from engine.training.streaming import load_streamed, wants_stream
from engine.training.train import TrainState
from tests.engine_plans import make_plan
from tests.test_freeze import MLP_BN, TRANSFER_FIELDS

CPU = jax.devices("cpu")[0]


def _supervised(tmp_path: Path) -> Plan:
    return make_plan(epochs=1)


def _streamed(tmp_path: Path) -> Plan:
    x, y = load_iris(return_X_y=True)
    rows = ["a,b,c,d,y"] + [",".join(map(str, [*r, t])) for r, t in zip(x, y, strict=True)]
    (tmp_path / "iris.csv").write_text("\n".join(rows) + "\n")
    return make_plan(
        epochs=1,
        n_train=120,
        scale={"data_path": "stream"},
        **{"data.source": {"kind": "csv", "path": "iris.csv", "target": "y"}},
    )


def _feature_extractor(tmp_path: Path) -> Plan:
    plan = make_plan(**MLP_BN)
    network = build_model(plan.model, plan.input_shape, plan.task)
    variables = init_variables(network, jax.random.PRNGKey(7), plan.input_shape)
    meta = {"model": plan.model.model_dump(), "input_shape": plan.input_shape}
    save_checkpoint(tmp_path / "base", jax.device_get(variables), meta)
    strategy = "feature_extractor"
    return make_plan(
        epochs=1,
        freeze={"strategy": strategy, **TRANSFER_FIELDS[strategy]},
        **{"model.base": str(tmp_path / "base"), **MLP_BN},
    )


def _gan(tmp_path: Path) -> Plan:
    return Plan.model_validate(
        {
            "name": "gan-test",
            "task": "gan",
            "modality": "image",
            "input_shape": [8, 8, 1],
            "n_train": 160,
            "data": {
                "source": {"kind": "builtin", "name": "digits", "subsample": 200},
                "normalize": "scale_01",
            },
            "model": {
                "arch": "mlp",
                "hidden_layers": 1,
                "units": 16,
                "latent_dim": 8,
                "output_units": 64,
                "activation": "leaky_relu",
            },
            "loss": {"name": "adversarial"},
            "optimizer": {"name": "adam", "learning_rate": 0.001, "b1": 0.5},
            "schedule": {"name": "constant"},
            "batch_size": 32,
            "epochs": 1,
            "steps_per_epoch": 5,
            "freeze": {"strategy": "from_scratch"},
            "regularization": {},
            "metrics": [],
            "seed": 0,
        }
    )


PATHS = {
    "supervised": _supervised,
    "streamed": _streamed,
    "feature_extractor": _feature_extractor,
    "gan": _gan,
}


def _trainer(plan: Plan, base_dir: Path) -> tuple[Trainer, int]:
    """The plan's trainer as ``run_plan`` builds it, and the training examples its data holds."""
    streamed = wants_stream(plan, base_dir)
    dataset = load_streamed(plan, base_dir) if streamed else load_data(plan, base_dir)
    return build_trainer(plan, dataset, CPU, base_dir, [], streamed=streamed), dataset.n_train


@pytest.mark.parametrize("path", list(PATHS))
def test_every_path_is_one_trainer_from_one_state_and_trains_a_finite_epoch(path, tmp_path):
    plan = PATHS[path](tmp_path)
    trainer, n_train = _trainer(plan, tmp_path)
    assert isinstance(trainer, Trainer)
    state = trainer.state
    assert type(state) is TrainState  # one state type: no path keeps its own
    assert int(state.step) == 0 and state.opt_state is None  # a phase's begin builds the optimizer
    assert trainer.n_train == n_train
    result = fit(trainer, plan, progress=False)
    assert result.epochs == [1]
    for name in ("loss", "val_loss", "grad_norm"):
        assert math.isfinite(result.series[name][0]), name
    assert int(result.state.step) == math.ceil(n_train / plan.batch_size)
    saved = trainer.variables_of(result.state)  # what the run folder's model.safetensors holds
    if path == "gan":
        assert set(saved["params"]) == {"generator", "discriminator"}
        assert set(result.state.opt_state) == {"generator", "discriminator"}
        assert trainer.write_samples is not None and trainer.placement is None
    elif path == "feature_extractor":  # the head trained on cached features, saved whole
        assert set(saved["params"]) == {"base", "head"}
        assert set(result.state.params) == {"head"}
        assert trainer.base_from is not None and trainer.placement is None
    else:
        assert set(saved["params"]) == {"base", "head"}
        assert trainer.placement is not None and trainer.write_samples is None


def test_a_population_starts_each_trial_where_a_lone_run_starts():
    plan = make_plan(epochs=1)
    lone, _ = _trainer(plan, Path("."))
    population = Population([plan, plan], ["optimizer.learning_rate"], load_data(plan), CPU)
    alone = population.initial_state([0], vmapped=False).trials
    together = population.initial_state([0, 1], vmapped=True).trials
    assert type(alone) is TrainState and type(together) is TrainState
    for name in ("step", "params", "batch_stats", "key"):
        expected = getattr(lone.state, name)
        assert jax.tree.all(jax.tree.map(np.array_equal, getattr(alone, name), expected)), name
        for trial in (0, 1):
            sliced = jax.tree.map(lambda a, i=trial: a[i], getattr(together, name))
            assert jax.tree.all(jax.tree.map(np.array_equal, sliced, expected)), name
    outcomes = train_trials(population, [0, 1], "population")
    assert [o.status for o in outcomes] == ["complete", "complete"]
    assert all(math.isfinite(o.result.series["val_loss"][0]) for o in outcomes)


def test_run_options_are_one_frozen_value():
    def stop(state, logs):
        return False

    options = RunOptions(out_dir="runs/x", callbacks=[stop], progress=False)
    assert options.callbacks == (stop,)  # a list given is kept as a tuple: nothing mutable inside
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.resume = True  # type: ignore[misc]
    resumed = dataclasses.replace(options, resume=True)
    assert resumed.resume and not options.resume and resumed.callbacks == (stop,)
