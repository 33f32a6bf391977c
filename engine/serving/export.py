"""A run's model as a file that runs without this project: ``jax.export`` (serialized StableHLO).

``export_run(predictor, path)`` traces the forward pass once, the run's
scaling first and its weights as constants, with a symbolic batch size, and
writes the serialized ``Exported``.  ``load_exported(path)`` reads it back as
``f(x) -> outputs`` for raw inputs ``[batch, *input_shape]`` (float32): only
jax is needed, no flax model code.  The outputs are the network's own (logits
for classes, values for regression), as ``advisor predict`` decodes them.
The network is built with XLA's own kernels (``impl="xla"``), so the file
is lowered for CPU and CUDA alike.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from advisor.contract.errors import InputError

# Platforms the file is lowered for; a GPU machine runs the same file as a CPU one.
PLATFORMS = ("cpu", "cuda")


def export_run(predictor, path: str | Path) -> Path:
    """Write the predictor's forward pass (scaling included) to ``path``; returns the path."""
    from jax import export

    from engine.nn.models import build_model

    plan, pre = predictor.plan, predictor.preprocessing
    network = build_model(plan.model, plan.input_shape, plan.task, impl="xla")
    variables = jax.tree.map(jnp.asarray, predictor.variables)
    if pre.normalize != "none":
        shift = np.asarray(pre.shift, np.float32).reshape(pre.stats_shape)
        spread = np.asarray(pre.spread, np.float32).reshape(pre.stats_shape)
    else:
        shift, spread = np.zeros((1,), np.float32), np.ones((1,), np.float32)

    def forward(x):
        return network.apply(variables, (x - shift) / spread, train=False, frozen_blocks=0)

    (batch,) = export.symbolic_shape("batch")
    spec = jax.ShapeDtypeStruct((batch, *plan.input_shape), jnp.float32)
    exported = export.export(jax.jit(forward), platforms=PLATFORMS)(spec)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(exported.serialize())
    return path


def load_exported(path: str | Path):
    """``f(x) -> outputs`` from a file ``export_run`` wrote (raw float32 inputs, any batch size).

    Raises:
        InputError: the file is missing or is not a serialized jax export.
    """
    from jax import export

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: does not exist; expected a file written by advisor export")
    try:
        exported = export.deserialize(bytearray(path.read_bytes()))
    except Exception as err:  # the deserializer raises several kinds on foreign bytes
        raise InputError(f"{path}: is not a jax export file ({type(err).__name__})") from None

    def call(x):
        return np.asarray(exported.call(jnp.asarray(x, jnp.float32)))

    call.exported = exported
    return call
