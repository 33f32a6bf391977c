"""A plan's search space: plan paths, their checks, Optuna distributions, trial plans.

``search.space`` maps plan field paths (``"optimizer.learning_rate"``,
``"model.units"``, ``"regularization.augmentation[0].strength"``) to
dimensions.  ``check_space(plan)`` rejects, in one line each, an empty space, a
path the plan does not have (or that its model or optimizer does not use), a
dimension whose values would make an invalid plan, a grid over a continuous
range, and a metric the run does not record.  ``distributions`` and
``grid_values`` turn the space into what Optuna samples; ``trial_plan`` applies
one trial's values to the plan.  Values Optuna cannot store (lists, such as
``model.filters`` choices) travel as JSON text.

A searched field is *per-trial* when trials differing only in it can train
together as one vmapped program (``engine.searching.population``): the learning rate,
weight decay, momentum (of sgd and rmsprop), dropout and augmentation
strengths.  Every other field changes the program, so ``structure_key`` groups
trial plans that share everything but their per-trial values.  No jax here.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import ValidationError

from advisor.contract.errors import InputError, suggest
from advisor.contract.io import describe_validation_error
from advisor.contract.plan_paths import get_path, leaf_paths, set_path, suggest_path
from advisor.contract.schemas import Plan, SearchParam

PER_TRIAL = (
    "optimizer.learning_rate",
    "optimizer.weight_decay",
    "optimizer.momentum",
    "model.dropout",
)
_STRENGTH = re.compile(r"^regularization\.augmentation\[(\d+)\]\.strength$")
# Fields only some optimizers read (engine.optim.optimizers); searching them elsewhere changes nothing.
_READ_BY = {
    "optimizer.momentum": ("sgd", "rmsprop"),
    "optimizer.nesterov": ("sgd",),
    "optimizer.b1": ("adam", "adamw"),
    "optimizer.b2": ("adam", "adamw"),
}
# Fields that are not hyperparameters of the training a trial runs.
_NOT_SEARCHABLE = (
    "search",
    "explanations",
    "derived_facts",
    "output_dir",
    "name",
    "steps_per_epoch",
    "n_train",
)
# Most values a grid takes from one int range before it should be a categorical list instead.
_MAX_INT_GRID = 64


def is_per_trial(path: str, plan: Plan) -> bool:
    """Whether trials that differ in ``path`` alone can train as one vmapped population."""
    if path == "optimizer.momentum":
        return plan.optimizer.name in _READ_BY[path]
    return path in PER_TRIAL or bool(_STRENGTH.match(path))


def searchable_paths(plan: Plan) -> list[str]:
    """Every searchable leaf path of ``plan`` (for suggestions in errors)."""
    data = plan.model_dump(exclude=set(_NOT_SEARCHABLE))
    return sorted(leaf_paths(data))


# ----------------------------------------------------------------------------- values Optuna can hold


def encode(value: Any) -> Any:
    """A choice as Optuna stores it: numbers, strings, booleans and None as they are; else JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


def decode(value: Any, param: SearchParam) -> Any:
    """The plan value behind an Optuna value (the inverse of ``encode`` for this dimension)."""
    if param.type == "categorical":
        for choice in param.choices or []:
            if encode(choice) == value:
                return choice
        return value
    if param.type == "int":
        return int(value)
    return float(value)


def distributions(space: dict[str, SearchParam]) -> dict:
    """Optuna distributions for the space (float, int or categorical per dimension)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for path, param in space.items():
        if param.type == "categorical":
            out[path] = CategoricalDistribution([encode(c) for c in param.choices or []])
        elif param.type == "int":
            out[path] = IntDistribution(int(param.low), int(param.high), log=param.log)
        else:
            out[path] = FloatDistribution(param.low, param.high, log=param.log)
    return out


def grid_values(space: dict[str, SearchParam]) -> dict[str, list]:
    """Every value each dimension takes in a grid (categorical choices, or an int range)."""
    return {
        path: [encode(c) for c in param.choices]
        if param.type == "categorical"
        else list(range(int(param.low), int(param.high) + 1))
        for path, param in space.items()
    }


def grid_size(space: dict[str, SearchParam]) -> int:
    """Number of points in the grid over ``space``."""
    return math.prod(len(values) for values in grid_values(space).values())


# ----------------------------------------------------------------------------- trial plans


def trial_plan(plan: Plan, values: dict[str, Any], epochs: int | None = None) -> Plan:
    """``plan`` with ``values`` (plan path -> value) applied, as the plan one trial runs.

    The result has no search section, ``steps_per_epoch`` follows the batch size,
    and ``epochs`` (when given) replaces the plan's.

    Raises:
        InputError: a value makes the plan invalid (names the path and why).
    """
    data = plan.model_dump()
    data["search"] = None
    data["output_dir"] = None
    for path, value in values.items():
        set_path(data, path, value)
    if epochs is not None:
        data["epochs"] = epochs
    data["steps_per_epoch"] = math.ceil(data["n_train"] / data["batch_size"])
    try:
        return Plan.model_validate(data)
    except ValidationError as err:
        shown = ", ".join(f"{k} = {v!r}" for k, v in values.items())
        raise InputError(
            f"search.space: the trial with {shown} is not a valid plan: {describe_validation_error(err, Plan)}"
        ) from None


def structure_key(plan: Plan) -> str:
    """What a trial's compiled program depends on: the plan without its per-trial values.

    Trial plans with equal keys can train together as one population.
    """
    data = plan.model_dump(
        exclude={"explanations", "derived_facts", "name", "output_dir", "search"}
    )
    data["optimizer"]["learning_rate"] = None
    data["optimizer"]["weight_decay"] = None
    data["model"]["dropout"] = None
    if is_per_trial("optimizer.momentum", plan):
        data["optimizer"]["momentum"] = None
    for augmentation in data["regularization"]["augmentation"]:
        augmentation["strength"] = None
    return json.dumps(data, sort_keys=True)


def per_trial_values(plan: Plan) -> dict[str, float]:
    """A trial plan's per-trial values, by path (learning rate, decay, momentum, dropout, strengths)."""
    values = {
        "optimizer.learning_rate": plan.optimizer.learning_rate,
        "optimizer.weight_decay": plan.optimizer.weight_decay,
        "model.dropout": plan.model.dropout,
    }
    if is_per_trial("optimizer.momentum", plan):
        values["optimizer.momentum"] = plan.optimizer.momentum or 0.0
    for i, augmentation in enumerate(plan.regularization.augmentation):
        values[f"regularization.augmentation[{i}].strength"] = augmentation.strength
    return values


# ----------------------------------------------------------------------------- checks


def recorded_series(plan: Plan) -> list[str]:
    """History series every epoch of a supervised run records (what a search can rank by)."""
    names = ["loss", "val_loss"]
    for metric in plan.metrics:
        names += [metric, f"val_{metric}"]
    return names


def check_space(plan: Plan, label: str = "plan") -> dict[str, SearchParam]:
    """The plan's search space, checked; raises one-line InputErrors prefixed with ``label``.

    Raises:
        InputError: no search section; an empty space; a path the plan lacks or does
            not use; a value that makes an invalid plan; a grid over a float range;
            a metric the run does not record; a GAN plan.
    """
    search = plan.search
    if search is None:
        raise InputError(
            f"{label}: search: the plan has no search section; add one (method, space, n_trials) or use advisor run"
        )
    if plan.task == "gan":
        raise InputError(
            f"{label}: search: searching a gan plan is not supported; remove the search section and run the plan"
        )
    if not search.space:
        raise InputError(
            f"{label}: search.space: is empty; expected at least one plan field to search, "
            'e.g. {"optimizer.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": true}}'
        )
    series = recorded_series(plan)
    if search.metric not in series:
        raise InputError(
            f"{label}: search.metric: {search.metric!r} is not recorded by this plan; {suggest(search.metric, series)}"
        )
    data = plan.model_dump()
    known = searchable_paths(plan)
    for path, param in search.space.items():
        field = f"{label}: search.space.{path}"
        if path.split(".")[0].split("[")[0] in _NOT_SEARCHABLE:
            raise InputError(f"{field}: is not a training hyperparameter and cannot be searched")
        try:
            current = get_path(data, path)
        except (KeyError, IndexError, TypeError):
            raise InputError(
                f"{field}: the plan has no such field; {suggest_path(path, known)}"
            ) from None
        if isinstance(current, dict):
            raise InputError(
                f"{field}: is a section, not a field; name one of its fields, e.g. {path}.{next(iter(current))}"
            )
        if current is None and path.startswith("model."):
            raise InputError(
                f"{field}: a {plan.model.arch} model has no {path.split('.', 1)[1]}; search a field this model uses"
            )
        readers = _READ_BY.get(path)
        if readers and plan.optimizer.name not in readers:
            raise InputError(
                f"{field}: optimizer {plan.optimizer.name!r} does not read it (only {', '.join(readers)} do)"
            )
        if search.method == "grid" and param.type == "float":
            raise InputError(
                f"{field}: grid search needs a list of values; give type 'categorical' with choices, or use method random or tpe"
            )
        if (
            search.method == "grid"
            and param.type == "int"
            and param.high - param.low + 1 > _MAX_INT_GRID
        ):
            raise InputError(
                f"{field}: a grid over {int(param.high - param.low + 1)} integers is too large; give a few choices (type 'categorical')"
            )
        if param.type == "int" and (param.low != int(param.low) or param.high != int(param.high)):
            raise InputError(
                f"{field}: an int dimension needs whole-number bounds; got low {param.low:g}, high {param.high:g}"
            )
        extremes = param.choices if param.type == "categorical" else [param.low, param.high]
        for value in extremes:
            value = int(value) if param.type == "int" else value
            try:
                trial_plan(plan, {path: value})
            except InputError as err:
                raise InputError(
                    f"{field}: the value {value!r} does not give a valid plan ({str(err).split(': ', 2)[-1]})"
                ) from None
    return dict(search.space)
