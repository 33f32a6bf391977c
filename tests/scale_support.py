"""Helpers the scale tests run in subprocesses (a forced device count must be set before jax loads).

``python -m tests.scale_support curves PLAN_JSON DEVICES...`` trains the plan
once per device count, in memory, and prints ``{devices: {series: values}}`` as JSON;
``population`` and ``sequential`` train K search trials over each count of trial devices.
"""

from __future__ import annotations

import json
import sys


def curves(plan_json: str, counts: list[int]) -> dict:
    """Each device count's history (loss, val_loss, accuracy-like series) for one plan."""
    import jax

    from advisor.contract.schemas import Plan
    from engine.datasets.data import load_data
    from engine.nn.models import build_model
    from engine.run import initial_variables
    from engine.runtime.sharding import placement_for
    from engine.training.fit import fit
    from engine.training.supervised import build_supervised

    plan = Plan.model_validate_json(plan_json)
    dataset = load_data(plan)
    out = {}
    for count in counts:
        device = jax.local_devices(backend="cpu")[0]
        network = build_model(plan.model, plan.input_shape, plan.task, impl="cpu")
        variables, _ = initial_variables(plan, network, ".", [])
        placement = placement_for(count, device)
        trainer = build_supervised(plan, network, dataset, device, variables, placement=placement)
        result = fit(trainer, plan, progress=False)
        shardings = {str(leaf.sharding) for leaf in jax.tree.leaves(result.state.params)}
        out[str(count)] = {
            "series": {
                k: v for k, v in result.series.items() if k in ("loss", "val_loss", "grad_norm")
            },
            "devices": placement.n_devices,
            "param_shardings": sorted(shardings),
        }
    return out


def population(plan_json: str, counts: list[int], k: int) -> dict:
    """``k`` trials (learning rates apart) trained vmapped, their trials split over each count."""
    import jax

    from advisor.contract.schemas import Plan
    from engine.datasets.data import load_data
    from engine.searching.population import Population
    from engine.searching.space import trial_plan
    from engine.searching.trials import train_trials

    base = Plan.model_validate_json(plan_json)
    plans = [trial_plan(base, {"optimizer.learning_rate": 0.005 * (i + 1)}) for i in range(k)]
    dataset = load_data(base)
    out = {}
    for count in counts:
        devices = jax.local_devices(backend="cpu")[:count]
        pop = Population(
            plans, ["optimizer.learning_rate"], dataset, devices[0], trial_devices=devices
        )
        state = pop.initial_state(range(k), vmapped=True)
        placed = sorted({str(leaf.sharding) for leaf in jax.tree.leaves(state.trials.params)})
        outcomes = train_trials(pop, range(k), "population")
        out[str(count)] = {
            "losses": [o.result.series["loss"] for o in outcomes],
            "val_losses": [o.result.series["val_loss"] for o in outcomes],
            "status": [o.status for o in outcomes],
            "shardings": placed,
        }
    return out


def sequential(plan_json: str, counts: list[int], k: int) -> dict:
    """``k`` trials (learning rates apart) trained in sequential mode with ``count`` trial devices."""
    import jax

    from advisor.contract.schemas import Plan
    from engine.datasets.data import load_data
    from engine.searching.population import Population
    from engine.searching.space import trial_plan
    from engine.searching.trials import train_trials

    base = Plan.model_validate_json(plan_json)
    plans = [trial_plan(base, {"optimizer.learning_rate": 0.005 * (i + 1)}) for i in range(k)]
    dataset = load_data(base)
    out = {}
    for count in counts:
        devices = jax.local_devices(backend="cpu")[:count]
        pop = Population(
            plans, ["optimizer.learning_rate"], dataset, devices[0], trial_devices=devices
        )
        outcomes = train_trials(pop, range(k), "sequential")
        out[str(count)] = {
            "losses": [o.result.series["loss"] for o in outcomes],
            "val_losses": [o.result.series["val_loss"] for o in outcomes],
            "devices": [o.device for o in outcomes],
            "lanes": len(pop.lanes()),
        }
    return out


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "curves":
        print(json.dumps(curves(sys.stdin.read(), [int(a) for a in args])))
    elif command == "population":
        k, *counts = (int(a) for a in args)
        print(json.dumps(population(sys.stdin.read(), counts, k)))
    elif command == "sequential":
        k, *counts = (int(a) for a in args)
        print(json.dumps(sequential(sys.stdin.read(), counts, k)))
