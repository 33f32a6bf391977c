"""feature_extractor (cached base features) vs freeze_base (the base run every epoch), per epoch.

    python benchmarks/feature_cache_bench.py            # three cases, 2 rounds x 10 timed epochs

Both strategies train the same head on the same data with the same batches;
``freeze_base`` runs the frozen base forward in every step (only forward: the
step differentiates the trainable head alone), ``feature_extractor`` runs it
once before training (``engine.pretrained.features``) and trains on the cached vectors.
An epoch's time is the engine's ``epoch_time`` series (training steps, epoch
summary, validation, the values brought to the host); each run's first epoch,
which compiles, is left out and the median of the rest reported.  The machine
is shared, so the variants alternate in one process: each round runs
freeze_base, then feature_extractor, then the floor below, for every case.

The floor ("bare head") is what the head's training costs with no engine
around it: the same ``Head`` module on the cached features, Adam, dropout and
the same batches in one scanned jit per epoch plus a validation forward pass —
no gradient diagnostics, optimizer partition, epoch summary or history.  The
one-time caching cost is timed on its own.

Cases: the transfer examples' base (a CNN of 32 and 64 filters on 8x8 digits,
digits 5-9 as the target), the same CNN on 32x32 generated shapes, and a
CIFAR-style ResNet (16-32-64, two blocks per stage) on 32x32 shapes — the
32x32 bases are left at their initialisation: timing does not depend on the weights.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EPOCHS = 11  # the first compiles and is not counted
ROUNDS = 2
STRATEGIES = ("freeze_base", "feature_extractor")


def _plan(
    strategy: str, base: str, data: dict, model: dict, input_shape, n_classes: int, n_train: int
):
    from advisor.contract.schemas import Plan

    return Plan.model_validate(
        {
            "name": f"bench-{strategy}",
            "task": "multiclass",
            "modality": "image",
            "input_shape": input_shape,
            "n_classes": n_classes,
            "n_train": n_train,
            "data": {"source": data, "normalize": "scale_01"},
            "model": {
                **model,
                "output_units": n_classes,
                "head_units": [128],
                "dropout": 0.3,
                "base": base,
            },
            "loss": {"name": "sparse_categorical_crossentropy"},
            "optimizer": {"name": "adam", "learning_rate": 1e-3},
            "schedule": {"name": "constant"},
            "batch_size": 32,
            "epochs": EPOCHS,
            "steps_per_epoch": -(-n_train // 32),
            "freeze": {"strategy": strategy},
            "regularization": {},
            "metrics": ["accuracy"],
            "seed": 0,
        }
    )


def _random_base(folder: Path, model: dict, input_shape) -> str:
    """A checkpoint of ``model`` at its initialisation (timing does not depend on the weights)."""
    import jax

    from advisor.contract.schemas import ModelPlan
    from engine.nn.models import build_model, init_variables
    from engine.outputs.checkpoint import save_checkpoint

    plan_model = ModelPlan.model_validate({**model, "output_units": 4})
    network = build_model(plan_model, input_shape, "multiclass")
    variables = jax.device_get(init_variables(network, jax.random.PRNGKey(0), input_shape))
    save_checkpoint(
        folder, variables, {"model": plan_model.model_dump(), "input_shape": list(input_shape)}
    )
    return str(folder)


class Case:
    """One base and dataset: its plans, its cached features, and the floor's compiled epoch."""

    def __init__(
        self,
        name: str,
        base: str,
        model: dict,
        data: dict,
        input_shape,
        n_classes: int,
        n_train: int,
    ):
        from engine.datasets.data import load_data
        from engine.nn.models import build_model
        from engine.pretrained.features import extract_features
        from engine.pretrained.transfer import read_base

        self.name, self.n_train = name, n_train
        self.plans = {
            s: _plan(s, base, data, model, input_shape, n_classes, n_train) for s in STRATEGIES
        }
        plan = self.plans["feature_extractor"]
        variables, _, _ = read_base(base)
        self.network = build_model(plan.model, plan.input_shape, plan.task)
        dataset = load_data(plan)
        extract_features(self.network, variables, dataset)  # compile once
        started = time.perf_counter()
        self.cached = extract_features(self.network, variables, dataset)
        self.caching = time.perf_counter() - started
        self.times: dict[str, list[float]] = {s: [] for s in (*STRATEGIES, "bare head")}
        self.bare_epoch, self.bare_state = _bare_head(self.network, self.cached, plan)

    def round(self, work: Path, index: int) -> None:
        """One run of each strategy, then EPOCHS epochs of the floor."""
        import jax
        import jax.numpy as jnp

        from advisor.workflows.running import run

        for strategy, plan in self.plans.items():
            result = run(plan, out_dir=work / f"{self.name}-{strategy}-{index}".replace(" ", "_"))
            self.times[strategy] += json.loads(Path(result.history).read_text())["series"][
                "epoch_time"
            ][1:]
        for epoch in range(1, EPOCHS + 1):
            started = time.perf_counter()
            self.bare_state, losses = self.bare_epoch(
                self.bare_state, jnp.asarray(epoch, jnp.int32)
            )
            jax.device_get(losses)
            if epoch > 1:
                self.times["bare head"].append(time.perf_counter() - started)

    def row(self) -> dict:
        out = {"case": self.name, "n_train": self.n_train, "caching": self.caching}
        out.update({k: statistics.median(v) for k, v in self.times.items()})
        out["speedup"] = out["freeze_base"] / out["feature_extractor"]
        return out


def _bare_head(network, cached, plan):
    """``epoch(state, epoch) -> (state, losses)``: the head trained on ``cached``, nothing else."""
    import jax
    import jax.numpy as jnp
    import optax

    from engine.datasets.data import epoch_batches
    from engine.pretrained.features import HeadNetwork

    head = HeadNetwork(network.head)
    x, y = jnp.asarray(cached.x_train), jnp.asarray(cached.y_train)
    x_val, y_val = jnp.asarray(cached.x_val), jnp.asarray(cached.y_val)
    tx = optax.adam(plan.optimizer.learning_rate)
    params = head.init(jax.random.PRNGKey(0), x[:1])["params"]
    data_key = jax.random.PRNGKey(1)

    def step(carry, batch):
        params, opt_state, key = carry
        index, mask = batch
        key, dropout = jax.random.split(key)

        def loss(p):
            out = head.apply({"params": p}, x[index], train=True, rngs={"dropout": dropout})
            return (
                jnp.sum(optax.softmax_cross_entropy_with_integer_labels(out, y[index]) * mask)
                / mask.sum()
            )

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, key), value

    @jax.jit
    def epoch_fn(state, epoch):
        order, mask = epoch_batches(data_key, epoch, x.shape[0], plan.batch_size)
        state, losses = jax.lax.scan(step, state, (order, mask))
        val = head.apply({"params": state[0]}, x_val)
        return state, (losses, optax.softmax_cross_entropy_with_integer_labels(val, y_val).mean())

    return epoch_fn, (params, tx.init(params), jax.random.PRNGKey(2))


def main() -> int:
    from advisor.workflows.bases import pretrain

    os.chdir(ROOT)
    work = Path(tempfile.mkdtemp(prefix="feature-cache-"))
    pretrain([ROOT / "examples/bases/digits_0to4.json"])
    cnn = {
        "arch": "cnn",
        "filters": [32, 64],
        "kernel_size": 3,
        "pooling": "max",
        "batch_norm": True,
    }
    resnet = {"arch": "resnet", "filters": [16, 32, 64], "blocks_per_stage": 2}
    load = os.getloadavg()
    # the target data: (source, input shape, classes, training examples)
    digits = ({"kind": "builtin", "name": "digits", "classes": [5, 6, 7, 8, 9]}, [8, 8, 1], 5, 717)
    shapes = (
        {"kind": "builtin", "name": "shapes", "n_samples": 1200, "image_size": [32, 32]},
        [32, 32, 1],
        4,
        960,
    )
    cnn_32 = _random_base(work / "cnn", cnn, [32, 32, 1])
    resnet_32 = _random_base(work / "resnet", resnet, [32, 32, 1])
    cases = [
        Case("cnn 32-64, digits 8x8", "runs/bases/digits_0to4", cnn, *digits),
        Case("cnn 32-64, shapes 32x32", cnn_32, cnn, *shapes),
        Case("resnet 16-32-64, shapes 32x32", resnet_32, resnet, *shapes),
    ]
    for index in range(ROUNDS):
        for case in cases:
            case.round(work, index)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; load average "
        f"{load[0]:.2f} before, {os.getloadavg()[0]:.2f} after; "
        f"{ROUNDS} rounds x {EPOCHS - 1} timed epochs"
    )
    print(
        "| case | n_train | freeze_base s/epoch | feature_extractor s/epoch | speed-up "
        "| bare head s/epoch | caching (once) |"
    )
    print("|---|---|---|---|---|---|---|")
    for c in (case.row() for case in cases):
        print(
            f"| {c['case']} | {c['n_train']} | {c['freeze_base']:.4f} | "
            f"{c['feature_extractor']:.4f} | {c['speedup']:.1f}x | {c['bare head']:.4f} | "
            f"{c['caching']:.3f} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
