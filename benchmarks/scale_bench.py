"""Epoch time on 1 device against N forced CPU devices (engine.runtime.sharding), same plan and data.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 nice python benchmarks/scale_bench.py

Trains the digits MLP and the small digits CNN (1,437 training images, batch
128, 4 epochs) once per device count in one process and prints the median
epoch time after the first (compile) epoch, with the final loss of each, so
the figures are of runs that agree.  Forced host devices share the same cores,
so on one CPU socket the expected result is about the same time, not a speed-up.
"""

from __future__ import annotations

import argparse
import os
import statistics


def plans():
    from tests.engine_plans import DIGITS_CNN, IRIS, make_plan

    digits = {"kind": "builtin", "name": "digits"}
    mlp = make_plan(
        IRIS,
        name="digits-mlp",
        input_shape=[64],
        n_classes=10,
        n_train=1437,
        batch_size=128,
        epochs=4,
        **{
            "data.source": digits,
            "model.units": 256,
            "model.hidden_layers": 2,
            "model.output_units": 10,
        },
    )
    cnn = make_plan(
        DIGITS_CNN,
        name="digits-cnn",
        n_train=1437,
        batch_size=128,
        epochs=4,
        **{"data.source": digits},
    )
    return [mlp, cnn]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--devices",
        default="1,8",
        help="comma list of device counts; 1m = one device through the sharded path (a mesh of one)",
    )
    args = parser.parse_args()
    import jax
    import numpy as np
    from jax.sharding import Mesh

    from engine.datasets.data import load_data
    from engine.nn.models import build_model
    from engine.run import initial_variables
    from engine.runtime.sharding import AXIS, Placement, placement_for
    from engine.training.fit import fit
    from engine.training.supervised import build_supervised

    print(
        f"jax {jax.__version__}; {len(jax.devices())} {jax.default_backend()} devices; "
        f"{len(os.sched_getaffinity(0))} cores; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')}"
    )
    for plan in plans():
        dataset = load_data(plan)
        for count in args.devices.split(","):
            device = jax.local_devices()[0]
            impl = "cpu" if device.platform == "cpu" else "xla"
            network = build_model(plan.model, plan.input_shape, plan.task, impl=impl)
            variables, _ = initial_variables(plan, network, ".", [])
            if count == "1m":
                placement = Placement((device,), Mesh(np.array([device]), (AXIS,)))
            else:
                placement = placement_for(int(count), device)
            trainer = build_supervised(
                plan, network, dataset, device, variables, placement=placement
            )
            result = fit(trainer, plan, progress=False)
            times = result.series["epoch_time"]
            print(
                f"{plan.name}: {count} device(s) on {device.platform}: median epoch {statistics.median(times[1:]):.3f} s"
                f" (first {times[0]:.2f} s), final loss {result.series['loss'][-1]:.5f}"
            )


if __name__ == "__main__":
    main()
