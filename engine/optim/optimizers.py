"""Optimizers by contract name (the ``OPTIMIZERS`` registry) and ``build_optimizer``.

Each registered factory is ``make(opt_plan: OptimizerPlan, learning_rate) ->
optax.GradientTransformation``, where ``learning_rate`` is a float or an optax
schedule; it builds the bare optax optimizer.  ``opt_plan.momentum`` and
``nesterov`` are read by the optimizers that have them (sgd, rmsprop), ``b1``
and ``b2`` by adam and adamw, and by no other, as the plan schema describes them.

``build_optimizer(opt_plan, schedule)`` is what the engine uses.  It chains

1. ``clip_by_global_norm(clip_norm)`` when the plan sets ``clip_norm``;
2. ``add_decayed_weights(weight_decay)`` (L2-style) for every optimizer but
   adamw, whose decay is decoupled inside ``optax.adamw``;
3. the named optimizer at rate ``schedule(step) * lr_scale``,

all inside ``optax.inject_hyperparams``, so the opt state carries the current
rate and a multiplier ``lr_scale``.  ``current_learning_rate(opt_state)`` reads
the rate the last step used (the engine's ``lr`` series) and
``set_lr_scale(opt_state, scale)`` changes the multiplier from the host between
epochs (reduce-on-plateau) without recompiling, since only an array value
changes.  Both find the injected state anywhere in the tree, so they keep
working when the engine wraps the optimizer in ``optax.partition`` to freeze
layers.  Weight decay skips 1-D parameters (biases, normalisation scales):
decaying them does not regularise and only shifts the layer's operating point.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from advisor.contract.errors import InputError
from advisor.contract.schemas import OptimizerPlan
from engine.runtime.registry import Registry

LearningRate = float | Callable[[jax.Array], jax.Array]

OPTIMIZERS: Registry = Registry("optimizer")

# optax has renamed this state once; accept whichever names the installed version has.
_INJECTED = tuple(
    getattr(optax, name)
    for name in ("InjectHyperparamsState", "InjectStatefulHyperparamsState")
    if hasattr(optax, name)
)


def _betas(opt_plan: OptimizerPlan) -> dict[str, float]:
    """Adam's moment decays the plan sets; the ones it leaves None keep optax's defaults."""
    return {
        name: getattr(opt_plan, name)
        for name in ("b1", "b2")
        if getattr(opt_plan, name) is not None
    }


def _momentum(opt_plan: OptimizerPlan):
    """The momentum to build with: None for none or 0; an array (a per-trial value) as it is.
    Nesterov momentum without a momentum is refused."""
    momentum = opt_plan.momentum
    if momentum is None or (isinstance(momentum, (int, float)) and momentum == 0):
        momentum = None
    if opt_plan.nesterov and momentum is None:
        raise InputError(
            "optimizer.nesterov: Nesterov momentum needs optimizer.momentum > 0, e.g. 0.9"
        )
    return momentum


def decay_mask(params) -> object:
    """True for the parameters weight decay applies to: matrices and kernels, not 1-D ones."""
    return jax.tree.map(lambda p: jnp.ndim(p) > 1, params)


@OPTIMIZERS.register("gd")
def make_gd(opt_plan: OptimizerPlan, learning_rate: LearningRate) -> optax.GradientTransformation:
    """Plain gradient descent; the engine feeds it the full training set each step."""
    del opt_plan
    return optax.sgd(learning_rate)


@OPTIMIZERS.register("sgd")
def make_sgd(opt_plan: OptimizerPlan, learning_rate: LearningRate) -> optax.GradientTransformation:
    """Stochastic gradient descent with optional (Nesterov) momentum."""
    momentum = _momentum(opt_plan)
    return optax.sgd(learning_rate, momentum=momentum, nesterov=opt_plan.nesterov)


@OPTIMIZERS.register("adagrad")
def make_adagrad(
    opt_plan: OptimizerPlan, learning_rate: LearningRate
) -> optax.GradientTransformation:
    """Per-parameter rates that shrink with the sum of squared gradients."""
    del opt_plan
    return optax.adagrad(learning_rate)


@OPTIMIZERS.register("rmsprop")
def make_rmsprop(
    opt_plan: OptimizerPlan, learning_rate: LearningRate
) -> optax.GradientTransformation:
    """Rates scaled by a moving average of squared gradients, with optional (Nesterov) momentum."""
    momentum = _momentum(opt_plan)
    return optax.rmsprop(learning_rate, momentum=momentum, nesterov=opt_plan.nesterov)


@OPTIMIZERS.register("adadelta")
def make_adadelta(
    opt_plan: OptimizerPlan, learning_rate: LearningRate
) -> optax.GradientTransformation:
    """Adagrad's successor with a moving window; the plan's rate scales its unit-free step."""
    del opt_plan
    return optax.adadelta(learning_rate)


@OPTIMIZERS.register("adam")
def make_adam(opt_plan: OptimizerPlan, learning_rate: LearningRate) -> optax.GradientTransformation:
    """Adam; the plan's b1/b2 where it sets them (GANs use b1 0.5), else optax's 0.9/0.999."""
    return optax.adam(learning_rate, **_betas(opt_plan))


@OPTIMIZERS.register("adamw")
def make_adamw(
    opt_plan: OptimizerPlan, learning_rate: LearningRate
) -> optax.GradientTransformation:
    """Adam with weight decay decoupled from the gradient (Loshchilov & Hutter 2019)."""
    return optax.adamw(
        learning_rate, weight_decay=opt_plan.weight_decay, mask=decay_mask, **_betas(opt_plan)
    )


# Optimizer fields that can be carried in the opt state as arrays (``per_trial``).
PER_TRIAL_FIELDS = ("weight_decay", "momentum")


def build_optimizer(
    opt_plan: OptimizerPlan, schedule: LearningRate, per_trial: tuple[str, ...] = ()
) -> optax.GradientTransformation:
    """The plan's optimizer with clipping and weight decay, its rate readable and scalable.

    ``per_trial`` names fields of ``PER_TRIAL_FIELDS`` to inject as hyperparameters
    too: they live in the opt state, so trials trained together under ``jax.vmap``
    each use their own value (``engine.searching.population`` sets them with ``set_hyperparam``).
    """
    make = OPTIMIZERS.get(opt_plan.name)

    # named parameters: inject_hyperparams injects only arguments it can name
    def chain(learning_rate, lr_scale, weight_decay=None, momentum=None):
        values = {
            k: v
            for k, v in (("weight_decay", weight_decay), ("momentum", momentum))
            if v is not None
        }
        plan = opt_plan.model_copy(update=values) if values else opt_plan
        parts = []
        if opt_plan.clip_norm is not None:
            parts.append(optax.clip_by_global_norm(opt_plan.clip_norm))
        decays = "weight_decay" in values or opt_plan.weight_decay > 0
        if decays and opt_plan.name != "adamw":
            parts.append(optax.add_decayed_weights(plan.weight_decay, mask=decay_mask))
        parts.append(make(plan, learning_rate * lr_scale))
        return optax.chain(*parts)

    make(opt_plan, opt_plan.learning_rate)  # a plan the optimizer rejects fails here, not in jit
    injected = {name: float(getattr(opt_plan, name) or 0.0) for name in per_trial}
    return optax.inject_hyperparams(chain)(learning_rate=schedule, lr_scale=1.0, **injected)


def _injected_states(opt_state) -> list:
    nodes = jax.tree.leaves(opt_state, is_leaf=lambda node: isinstance(node, _INJECTED))
    return [node for node in nodes if isinstance(node, _INJECTED)]


def current_learning_rate(opt_state) -> jax.Array:
    """The rate (schedule x multiplier) the last step used, as a scalar array.

    Works inside jit and out; read it before ``set_lr_scale`` for the epoch's rate.
    """
    states = _injected_states(opt_state)
    if not states:
        raise ValueError(
            "opt_state holds no injected hyperparameters; build it with build_optimizer"
        )
    hyperparams = states[0].hyperparams
    return hyperparams["learning_rate"] * hyperparams["lr_scale"]


def set_lr_scale(opt_state, scale: float):
    """A copy of ``opt_state`` whose rate multiplier is ``scale`` (same dtype: no recompile)."""
    return set_hyperparam(opt_state, "lr_scale", scale)


def set_hyperparam(opt_state, name: str, value):
    """A copy of ``opt_state`` with the injected hyperparameter ``name`` set to ``value``.

    The value keeps the stored dtype, so nothing recompiles; it may be an array
    with one value per trial when the states of several trials are stacked.
    """

    def assign(node):
        if not isinstance(node, _INJECTED):
            return node
        old = node.hyperparams[name]
        hyperparams = {**node.hyperparams, name: jnp.asarray(value, dtype=old.dtype)}
        return node._replace(hyperparams=hyperparams)

    return jax.tree.map(assign, opt_state, is_leaf=lambda node: isinstance(node, _INJECTED))
