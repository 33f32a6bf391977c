"""GAN training (task gan): a generator and a discriminator that mirrors it.

``model.arch`` mlp: both are dense stacks of ``hidden_layers`` x ``units``;
cnn: the generator projects the noise to a small map and upsamples through one
conv block per entry of ``filters`` (reversed), the discriminator downsamples
through the same blocks.  The generator's output is linear, in the scale of
the (normalised) data.  Each step updates the discriminator on a real batch and
a fake one, then the generator (for wasserstein only every ``N_CRITIC`` steps,
with the WGAN-GP penalty from ``engine.optim.losses``).  When the loss has a
reconstruction term (paired image-to-image), the generator is conditioned on
the input ``x`` and must produce the target ``y``; both players see ``x``.

The history records ``d_loss`` and ``g_loss`` (train and ``val_``), with
``loss``/``val_loss`` = the generator's loss, the generator's gradient and
update diagnostics, and the samples' quality ``val_fd`` and ``val_diversity``
(``engine.training.gan_quality``).  Samples at fixed noise are kept every
``ceil(epochs / GRIDS)`` epochs and written, with the final ones, as PNG grids
at the end (``write_samples``).  ``build_gan`` returns the ``engine.training.fit.Trainer``;
both players live in one ``engine.training.train.TrainState`` (params and opt_state keyed
``generator`` and ``discriminator``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from advisor.contract.errors import InputError
from advisor.contract.schemas import Plan
from engine.datasets.data import Dataset, steps_for
from engine.nn.layers import Conv, pool
from engine.nn.models import ACTIVATIONS
from engine.optim.losses import GanLoss, build_loss, gradient_penalty
from engine.optim.optimizers import build_optimizer, current_learning_rate, set_lr_scale
from engine.optim.schedules import build_schedule
from engine.runtime import compiler
from engine.runtime.sharding import single
from engine.training.fit import Trainer
from engine.training.gan_quality import SAMPLES, QualityProbe, sample_grid
from engine.training.supervised import DeviceData
from engine.training.train import (
    TrainState,
    choose_loop,
    dead_fraction,
    make_train_epoch,
    masked_mean,
)

# Critic updates per generator update for the Wasserstein objective (Gulrajani et al. 2017).
N_CRITIC = 5
GRIDS = 5  # sample grids written over a run (every ceil(epochs / GRIDS) epochs), plus the final one
_TINY = 1e-12


class _Player(nn.Module):
    """The structure both players share: the plan's model section, read the same way."""

    arch: str
    units: int | None
    hidden_layers: int | None
    filters: Sequence[int] | None
    kernel_size: int | None
    activation: str
    impl: str = "xla"
    dtype: jnp.dtype = jnp.float32


class Generator(_Player):
    """Noise (and, for paired GANs, the flattened input) -> one example of ``output_shape``."""

    output_shape: Sequence[int] = ()

    @nn.compact
    def __call__(self, z: jax.Array, cond: jax.Array | None = None) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        h = (
            z
            if cond is None
            else jnp.concatenate([z, cond.reshape(cond.shape[0], -1).astype(z.dtype)], axis=1)
        )
        if self.arch == "mlp":
            for i in range(self.hidden_layers):
                h = nn.Dense(self.units, dtype=self.dtype, name=f"dense_{i}")(h)
                self.sow("intermediates", "preact", h)
                h = act(h)
            out = nn.Dense(math.prod(self.output_shape), dtype=self.dtype, name="output")(h)
            return out.reshape(z.shape[0], *self.output_shape).astype(jnp.float32)
        height, width, channels = self.output_shape
        scale = 2 ** len(self.filters)
        h = nn.Dense(
            (height // scale) * (width // scale) * self.filters[-1],
            dtype=self.dtype,
            name="project",
        )(h)
        h = act(h).reshape(z.shape[0], height // scale, width // scale, self.filters[-1])
        for i, f in enumerate(reversed(self.filters)):
            h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)  # nearest-neighbour upsampling
            h = Conv(
                f, (self.kernel_size,) * 2, impl=self.impl, dtype=self.dtype, name=f"conv_{i}"
            )(h)
            self.sow("intermediates", "preact", h)
            h = act(h)
        return Conv(
            channels, (self.kernel_size,) * 2, impl=self.impl, dtype=self.dtype, name="output"
        )(h).astype(jnp.float32)


class Discriminator(_Player):
    """One example (and, for paired GANs, its input) -> one real/fake logit or critic score."""

    @nn.compact
    def __call__(self, x: jax.Array, cond: jax.Array | None = None) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        h = x if cond is None else jnp.concatenate([x, cond.astype(x.dtype)], axis=-1)
        if self.arch == "mlp":
            h = h.reshape(h.shape[0], -1)
            for i in range(self.hidden_layers):
                h = act(nn.Dense(self.units, dtype=self.dtype, name=f"dense_{i}")(h))
        else:
            for i, f in enumerate(self.filters):
                h = act(
                    Conv(
                        f,
                        (self.kernel_size,) * 2,
                        impl=self.impl,
                        dtype=self.dtype,
                        name=f"conv_{i}",
                    )(h)
                )
                h = pool(h, "avg")
            h = h.reshape(h.shape[0], -1)
        return nn.Dense(1, dtype=self.dtype, name="output")(h).astype(jnp.float32)[:, 0]


def build_players(plan: Plan, impl: str, dtype) -> tuple[Generator, Discriminator]:
    """The generator and its mirrored discriminator for a gan plan."""
    m = plan.model
    if m.arch not in ("mlp", "cnn"):
        raise InputError(f"model.arch: a GAN is built as 'mlp' or 'cnn', not {m.arch!r}")
    if m.latent_dim is None:
        raise InputError(
            "model.latent_dim: required for task gan (the size of the generator's noise)"
        )
    shape = tuple(plan.input_shape)
    if m.arch == "cnn":
        scale = 2 ** len(m.filters)
        if len(shape) != 3 or shape[0] % scale or shape[1] % scale:
            raise InputError(
                f"model.filters: a cnn GAN halves the image once per filter entry, so height and width "
                f"must divide by {scale}; input_shape is {list(shape)}"
            )
    common = dict(
        arch=m.arch,
        units=m.units,
        hidden_layers=m.hidden_layers,
        filters=m.filters,
        kernel_size=m.kernel_size,
        activation=m.activation,
        impl=impl,
        dtype=dtype,
    )
    return Generator(output_shape=shape, **common), Discriminator(**common)


def _first_layer(params: dict) -> str:
    """The generator's layer nearest its input: the noise projection or the first dense layer."""
    for name in ("project", "dense_0", "output"):
        if name in params:
            return name
    raise KeyError(f"no generator input layer among {sorted(params)}")


def make_gan_step(
    generator, discriminator, gan: GanLoss, g_tx, d_tx, latent_dim: int, paired: bool
):
    """``gan_step(state, batch) -> (state, metrics)``: a discriminator update, then the generator's."""
    n_critic = N_CRITIC if gan.gradient_penalty > 0 else 1

    def gan_step(state: TrainState, batch: dict):
        key = jax.random.fold_in(state.key, state.step)
        z_key, gp_key = jax.random.split(key)
        cond = batch["x"] if paired else None
        real = batch["y"] if paired else batch["x"]
        mask = batch["mask"]
        z = jax.random.normal(z_key, (real.shape[0], latent_dim), jnp.float32)
        g_params, d_params = state.params["generator"], state.params["discriminator"]

        def critic(params, images):
            return discriminator.apply({"params": params}, images, cond)

        def d_objective(params):
            fake = jax.lax.stop_gradient(generator.apply({"params": g_params}, z, cond))
            loss = masked_mean(gan.discriminator(critic(params, real), critic(params, fake)), mask)
            if gan.gradient_penalty > 0:
                loss = loss + gan.gradient_penalty * gradient_penalty(
                    lambda t: critic(params, t), real, fake, gp_key
                )
            return loss

        d_loss, d_grads = jax.value_and_grad(d_objective)(d_params)
        d_updates, d_opt = d_tx.update(d_grads, state.opt_state["discriminator"], d_params)
        d_params = optax.apply_updates(d_params, d_updates)

        def g_objective(params):
            fake = generator.apply({"params": params}, z, cond)
            loss = masked_mean(gan.generator(critic(d_params, fake)), mask)
            if gan.reconstruction is not None:
                loss = loss + masked_mean(gan.reconstruction(fake, real), mask)
            return loss

        g_loss, g_grads = jax.value_and_grad(g_objective)(g_params)
        g_updates, g_opt = g_tx.update(g_grads, state.opt_state["generator"], g_params)
        train_g = (state.step % n_critic) == 0
        g_updates = jax.tree.map(lambda u: jnp.where(train_g, u, jnp.zeros_like(u)), g_updates)
        g_opt = jax.tree.map(
            lambda new, old: jnp.where(train_g, new, old), g_opt, state.opt_state["generator"]
        )
        metrics = {
            "loss": g_loss,
            "d_loss": d_loss,
            "g_loss": g_loss,
            "grad_norm": optax.tree.norm(g_grads),
            "grad_norm_first": optax.tree.norm(g_grads[_first_layer(g_grads)]),
            "grad_norm_last": optax.tree.norm(g_grads["output"]),
            "update_ratio": optax.tree.norm(g_updates) / (optax.tree.norm(g_params) + _TINY),
            "outputs": jnp.zeros((real.shape[0], 0), jnp.float32),  # no train metrics for a GAN
        }
        params = {"generator": optax.apply_updates(g_params, g_updates), "discriminator": d_params}
        opt_state = {"generator": g_opt, "discriminator": d_opt}
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return gan_step


class GanPhase:
    """The whole GAN run as one phase of ``engine.training.fit``."""

    def __init__(
        self, plan: Plan, players, data: DeviceData, loop: str, data_key, device, paired: bool
    ):
        self.plan, (self.generator, self.discriminator) = plan, players
        self.data, self.device, self.paired, self.loop, self.data_key = (
            data,
            device,
            paired,
            loop,
            data_key,
        )
        self.epochs = plan.epochs
        self.n_train = data.x_train.shape[0]
        self.gan = build_loss(plan.loss)
        if not isinstance(self.gan, GanLoss):
            raise InputError(
                f"loss.name: {plan.loss.name!r} is not a GAN objective; expected adversarial or wasserstein"
            )
        self.steps_per_epoch = steps_for(self.n_train, plan.batch_size)[0]
        self.evaluate = self._make_evaluate()
        self._init_samples()

    def _init_samples(self) -> None:
        """Fixed noise and the quality probe: the same latent points are drawn every epoch."""
        d = self.data
        real = (lambda x, y: y) if self.paired else (lambda x, y: x)
        host = jax.device_get((d.x_train, d.y_train, d.x_val, d.y_val))
        self.quality = QualityProbe(real(host[0], host[1]), real(host[2], host[3]))
        n = min(SAMPLES, host[2].shape[0])
        self.sample_cond = d.x_val[:n] if self.paired else None
        self.sample_z = jax.device_put(
            jax.random.normal(jax.random.PRNGKey(2), (n, self.plan.model.latent_dim), jnp.float32),
            self.device,
        )
        self.grid_every = max(1, math.ceil(self.epochs / GRIDS))
        self.grids: dict[int, np.ndarray] = {}
        generator = self.generator
        self.generate = compiler.jit(
            lambda params, z, cond: generator.apply({"params": params}, z, cond)
        )

    def samples(self, state) -> np.ndarray:
        """The generator's examples at the fixed noise (and validation inputs, for paired GANs)."""
        fake = self.generate(state.params["generator"], self.sample_z, self.sample_cond)
        return np.asarray(jax.device_get(fake))

    def write_samples(self, run_dir, state) -> list[str]:
        """PNG grids of the samples kept every ``grid_every`` epochs and of the final generator."""
        from pathlib import Path

        paths = []
        for epoch, fake in sorted(self.grids.items()):
            path = Path(run_dir) / f"samples_epoch_{epoch:04d}.png"
            sample_grid(fake, path, f"{self.plan.name or 'gan'}: epoch {epoch}")
            paths.append(str(path))
        if state is not None:
            path = Path(run_dir) / "samples_final.png"
            sample_grid(self.samples(state)[:64], path, f"{self.plan.name or 'gan'}: final")
            paths.append(str(path))
        return paths

    def begin(self, state: TrainState) -> TrainState:
        schedule = build_schedule(
            self.plan.schedule, self.plan.optimizer.learning_rate, self.steps_per_epoch, self.epochs
        )
        g_tx, d_tx = (
            build_optimizer(self.plan.optimizer, schedule),
            build_optimizer(self.plan.optimizer, schedule),
        )
        step = make_gan_step(
            self.generator,
            self.discriminator,
            self.gan,
            g_tx,
            d_tx,
            self.plan.model.latent_dim,
            self.paired,
        )
        self.train_epoch = make_train_epoch(
            step, self._summary, self.loop, self.n_train, self.plan.batch_size, self.data_key
        )
        opt_state = {
            "generator": g_tx.init(state.params["generator"]),
            "discriminator": d_tx.init(state.params["discriminator"]),
        }
        return state.replace(opt_state=jax.device_put(opt_state, self.device))

    def _summary(self, state, step_metrics, y_train, order, probe):
        del y_train, order
        step_metrics.pop("outputs")
        out = {name: jnp.mean(values) for name, values in step_metrics.items()}
        out["lr"] = current_learning_rate(state.opt_state["generator"]).astype(jnp.float32)
        z = jax.random.normal(
            jax.random.PRNGKey(0), (probe.shape[0], self.plan.model.latent_dim), jnp.float32
        )
        variables = {"params": {"generator": state.params["generator"]}}
        cond = probe if self.paired else None
        out["dead_fraction"] = dead_fraction(
            _Conditioned(self.generator, cond), variables, z, self.plan.model.activation
        )
        return out

    def _make_evaluate(self):
        generator, discriminator, gan = self.generator, self.discriminator, self.gan
        latent, paired = self.plan.model.latent_dim, self.paired

        @compiler.jit
        def evaluate(params, x, y):
            """Both players' losses on the validation examples, with fixed noise."""
            cond = x if paired else None
            real = y if paired else x
            z = jax.random.normal(jax.random.PRNGKey(1), (real.shape[0], latent), jnp.float32)
            fake = generator.apply({"params": params["generator"]}, z, cond)
            d_fake = discriminator.apply({"params": params["discriminator"]}, fake, cond)
            d_real = discriminator.apply({"params": params["discriminator"]}, real, cond)
            g_loss = jnp.mean(gan.generator(d_fake))
            if gan.reconstruction is not None:
                g_loss = g_loss + jnp.mean(gan.reconstruction(fake, real))
            return {
                "val_loss": g_loss,
                "val_g_loss": g_loss,
                "val_d_loss": jnp.mean(gan.discriminator(d_real, d_fake)),
            }

        return evaluate

    def run_epoch(self, state, epoch):
        d = self.data
        state, summary = self.train_epoch(
            state, d.x_train, d.y_train, d.probe, jnp.asarray(epoch, jnp.int32)
        )
        fake = self.samples(state)
        if epoch % self.grid_every == 0:
            self.grids[epoch] = fake[:64]
        quality = self.quality.scores(fake)
        return state, {**summary, **self.evaluate(state.params, d.x_val, d.y_val), **quality}

    def snapshot(self, state):
        return jax.tree.map(jnp.copy, state.params)

    def restore(self, state, snapshot):
        return state.replace(params=snapshot)

    def scale_lr(self, state, scale):
        # both players' optimizers: set_lr_scale sets every injected multiplier in the tree
        return state.replace(
            opt_state=jax.device_put(set_lr_scale(state.opt_state, scale), self.device)
        )


class _Conditioned(nn.Module):
    """The generator with its condition bound, so ``dead_fraction`` can probe it with noise alone."""

    generator: Generator
    cond: jax.Array | None

    def __call__(self, z, train: bool = False):
        del train
        return self.generator(z, self.cond)


def build_gan(plan: Plan, dataset: Dataset, device, impl: str, dtype) -> Trainer:
    """The ``Trainer`` of a gan plan: one phase, both players' parameters in one ``TrainState``.

    The state's ``params`` and ``opt_state`` hold ``{"generator", "discriminator"}``;
    ``write_samples`` writes the sample grids.
    """
    generator, discriminator = build_players(plan, impl, dtype)
    gan = build_loss(plan.loss)
    paired = isinstance(gan, GanLoss) and gan.reconstruction is not None
    if paired:
        dataset = _paired_targets(dataset, plan)
    root = jax.random.PRNGKey(plan.seed)
    g_key, d_key, data_key, train_key = jax.random.split(jax.random.fold_in(root, 0), 4)
    z = jnp.zeros((1, plan.model.latent_dim), jnp.float32)
    cond = jnp.zeros((1, *plan.input_shape), jnp.float32) if paired else None
    g_params = generator.init(g_key, z, cond)["params"]
    d_params = discriminator.init(d_key, jnp.zeros((1, *plan.input_shape), jnp.float32), cond)[
        "params"
    ]
    data = DeviceData.put(dataset, device)
    # every GAN convolution is stride 1, on engine.nn.layers' kernels: the scanned epoch suits it
    phase = GanPhase(
        plan,
        (generator, discriminator),
        data,
        choose_loop(device.platform, has_conv=False),
        data_key,
        device,
        paired,
    )
    variables = {"params": {"generator": g_params, "discriminator": d_params}}
    state = single(device).put(TrainState.start(variables, train_key))
    return Trainer(
        (phase,),
        state,
        lambda s: {"params": s.params},
        n_train=phase.n_train,
        write_samples=phase.write_samples,
    )


def _paired_targets(dataset: Dataset, plan: Plan) -> Dataset:
    """Paired GANs generate ``y`` from ``x``: targets must be images of input_shape, scaled like x."""
    shape = tuple(plan.input_shape)
    if dataset.y_train.shape[1:] != shape and math.prod(dataset.y_train.shape[1:]) != math.prod(
        shape
    ):
        raise InputError(
            f"loss.terms: a reconstruction term needs paired targets of shape {list(shape)}; "
            f"the data's targets have shape {list(dataset.y_train.shape[1:])}"
        )
    shift = np.asarray(dataset.scaling.get("shift", [0.0]), np.float32)
    spread = np.asarray(dataset.scaling.get("spread", [1.0]), np.float32)
    scale = lambda y: ((y.reshape(len(y), *shape) - shift) / spread).astype(np.float32)  # noqa: E731
    return Dataset(
        dataset.x_train,
        scale(dataset.y_train),
        dataset.x_val,
        scale(dataset.y_val),
        dataset.input_shape,
        dataset.n_classes,
        dataset.class_names,
        dataset.scaling,
    )
