"""feature_extractor (cached base features) vs freeze_base (the frozen base run every epoch), per epoch.

    python benchmarks/feature_cache_bench.py            # both cases, 10 timed epochs each

Both strategies train the same head on the same data with the same batches;
``freeze_base`` runs the frozen base forward (and backward, to the head's
input) in every step, ``feature_extractor`` runs it once before training
(``engine.features``) and trains on the cached vectors.  An epoch's time is
the engine's ``epoch_time`` series (training steps, epoch summary and
validation); the first epoch, which compiles, is left out and the median of
the rest reported.  The one-time caching cost is timed on its own.

Cases: the transfer examples' base (a CNN of 32 and 64 filters on 8x8 digits,
digits 5-9 as the target), the same CNN on 32x32 generated shapes, and a
CIFAR-style ResNet (16-32-64, two blocks per stage) on 32x32 shapes — the
32x32 bases are left at their initialisation: timing does not depend on the weights.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EPOCHS = 11  # the first compiles and is not counted


def _plan(strategy: str, base: str, data: dict, model: dict, input_shape, n_classes: int, n_train: int):
    from advisor.schemas import Plan

    return Plan.model_validate({
        "name": f"bench-{strategy}", "task": "multiclass", "modality": "image", "input_shape": input_shape,
        "n_classes": n_classes, "n_train": n_train, "data": {"source": data, "normalize": "scale_01"},
        "model": {**model, "output_units": n_classes, "head_units": [128], "dropout": 0.3, "base": base},
        "loss": {"name": "sparse_categorical_crossentropy"}, "optimizer": {"name": "adam", "learning_rate": 1e-3},
        "schedule": {"name": "constant"}, "batch_size": 32, "epochs": EPOCHS, "steps_per_epoch": -(-n_train // 32),
        "freeze": {"strategy": strategy}, "regularization": {}, "metrics": ["accuracy"], "seed": 0,
    })


def _random_base(folder: Path, model: dict, input_shape) -> str:
    """A checkpoint of ``model`` at its initialisation (timing does not depend on the weights)."""
    import jax

    from advisor.schemas import ModelPlan
    from engine.checkpoint import save_checkpoint
    from engine.models import build_model, init_variables

    plan_model = ModelPlan.model_validate({**model, "output_units": 4})
    network = build_model(plan_model, input_shape, "multiclass")
    variables = jax.device_get(init_variables(network, jax.random.PRNGKey(0), input_shape))
    save_checkpoint(folder, variables, {"model": plan_model.model_dump(), "input_shape": list(input_shape)})
    return str(folder)


def time_case(name: str, base: str, data: dict, model: dict, input_shape, n_classes: int, n_train: int, work: Path) -> dict:
    """Median epoch seconds of both strategies, and the one-time caching cost."""
    from advisor.running import run
    from engine.data import load_data
    from engine.features import extract_features
    from engine.models import build_model
    from engine.transfer import read_base

    out = {"case": name, "n_train": n_train}
    for strategy in ("freeze_base", "feature_extractor"):
        plan = _plan(strategy, base, data, model, input_shape, n_classes, n_train)
        result = run(plan, out_dir=work / f"{name}-{strategy}")
        epoch_times = json.loads(Path(result.history).read_text())["series"]["epoch_time"][1:]
        out[strategy] = statistics.median(epoch_times)
    plan = _plan("feature_extractor", base, data, model, input_shape, n_classes, n_train)
    variables, structure, _ = read_base(base)
    network = build_model(plan.model, plan.input_shape, plan.task)
    dataset = load_data(plan)
    extract_features(network, variables, dataset)  # compile once
    started = time.perf_counter()
    extract_features(network, variables, dataset)
    out["caching"] = time.perf_counter() - started
    out["speedup"] = out["freeze_base"] / out["feature_extractor"]
    return out


def main() -> int:
    import os

    from advisor.bases import pretrain

    os.chdir(ROOT)
    work = Path(tempfile.mkdtemp(prefix="feature-cache-"))
    pretrain([ROOT / "examples/bases/digits_0to4.json"])
    cnn = {"arch": "cnn", "filters": [32, 64], "kernel_size": 3, "pooling": "max", "batch_norm": True}
    resnet = {"arch": "resnet", "filters": [16, 32, 64], "blocks_per_stage": 2}
    cases = [
        time_case("cnn 32-64, digits 8x8", "runs/bases/digits_0to4",
                  {"kind": "builtin", "name": "digits", "classes": [5, 6, 7, 8, 9]}, cnn, [8, 8, 1], 5, 717, work),
        time_case("cnn 32-64, shapes 32x32", _random_base(work / "cnn-base", cnn, [32, 32, 1]),
                  {"kind": "builtin", "name": "shapes", "n_samples": 1200, "image_size": [32, 32]}, cnn,
                  [32, 32, 1], 4, 960, work),
        time_case("resnet 16-32-64, shapes 32x32", _random_base(work / "resnet-base", resnet, [32, 32, 1]),
                  {"kind": "builtin", "name": "shapes", "n_samples": 1200, "image_size": [32, 32]}, resnet,
                  [32, 32, 1], 4, 960, work),
    ]
    print("| case | n_train | freeze_base s/epoch | feature_extractor s/epoch | speed-up | caching (once) |")
    print("|---|---|---|---|---|---|")
    for c in cases:
        print(f"| {c['case']} | {c['n_train']} | {c['freeze_base']:.4f} | {c['feature_extractor']:.4f} | "
              f"{c['speedup']:.1f}x | {c['caching']:.3f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
