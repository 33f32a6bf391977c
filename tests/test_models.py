"""engine.nn.models and engine.nn.layers: every model by name, the parameter tree, the CPU kernels."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from advisor.contract.schemas import ModelPlan
from advisor.contract.vocabulary import ARCHS
from engine.nn.layers import Conv, conv_nhwc, pool, same_padding
from engine.nn.models import MODELS, build_model, decode_boxes, init_variables

# (registry name, model section, input shape): one row per registered model, both conv ranks.
# "_test" is not a plan name; it is built from any model section, here an mlp one.
MODELS_UNDER_TEST = [
    (
        "mlp",
        dict(arch="mlp", hidden_layers=2, units=8, head_units=[4], dropout=0.2, batch_norm=True),
        [6],
    ),
    (
        "cnn",
        dict(
            arch="cnn",
            filters=[4, 8],
            kernel_size=3,
            pooling="max",
            batch_norm=True,
            head_units=[8],
        ),
        [8, 8, 1],
    ),
    ("cnn", dict(arch="cnn", filters=[4], kernel_size=3, pooling="avg"), [12, 3]),
    ("resnet", dict(arch="resnet", filters=[4, 8], blocks_per_stage=1), [8, 8, 3]),
    ("_test", dict(arch="mlp", hidden_layers=0, units=1), [5]),
]


def test_every_architecture_of_the_vocabulary_is_registered():
    assert {n for n in MODELS.names() if not n.startswith("_")} == set(ARCHS)


def test_every_registered_model_is_under_test():
    assert {row[0] for row in MODELS_UNDER_TEST} == set(MODELS.names())


@pytest.mark.parametrize(("name", "fields", "shape"), MODELS_UNDER_TEST)
def test_model_output_and_parameter_tree(name, fields, shape):
    make = MODELS.get(name)
    # XLA's own kernels here: the CPU kernels have their own test, and compile slower
    network = make(
        ModelPlan(output_units=5, **fields), shape, impl="xla", dtype=jnp.float32, task="multiclass"
    )
    variables = init_variables(network, jax.random.PRNGKey(0), shape)
    params = variables["params"]
    assert set(params) == {"base", "head"}
    assert sorted(params["base"]) == [f"blocks_{i}" for i in range(network.n_blocks)]
    assert "output" in params["head"]
    x = jnp.ones((3, *shape))
    apply = jax.jit(
        lambda v, x: network.apply(
            v, x, train=True, rngs={"dropout": jax.random.PRNGKey(1)}, mutable=["batch_stats"]
        )
    )
    out, _ = apply(variables, x)
    assert out.shape == (3, 5) and out.dtype == jnp.float32


def test_bfloat16_compute_keeps_float32_parameters():
    network = build_model(
        ModelPlan(arch="cnn", filters=[4], kernel_size=3, pooling="max", output_units=2),
        [8, 8, 1],
        "binary",
        dtype=jnp.bfloat16,
    )
    variables = init_variables(network, jax.random.PRNGKey(0), [8, 8, 1])
    assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
    assert jax.jit(network.apply)(variables, jnp.ones((2, 8, 8, 1))).dtype == jnp.float32


def test_frozen_blocks_keep_their_batch_statistics():
    network = build_model(ModelPlan(**MODELS_UNDER_TEST[0][1], output_units=3), [6], "multiclass")
    variables = init_variables(network, jax.random.PRNGKey(0), [6])
    x = jax.random.normal(jax.random.PRNGKey(2), (4, 6)) * 3 + 1
    _, new = jax.jit(
        lambda v: network.apply(
            v,
            x,
            train=True,
            frozen_blocks=1,
            rngs={"dropout": jax.random.PRNGKey(3)},
            mutable=["batch_stats"],
        )
    )(variables)
    old = variables["batch_stats"]["base"]
    assert jax.tree.all(
        jax.tree.map(jnp.array_equal, new["batch_stats"]["base"]["blocks_0"], old["blocks_0"])
    )
    assert not jnp.array_equal(
        new["batch_stats"]["base"]["blocks_1"]["bn"]["mean"], old["blocks_1"]["bn"]["mean"]
    )


def test_detection_boxes_are_well_formed():
    boxes = decode_boxes(jax.random.normal(jax.random.PRNGKey(0), (50, 7)) * 4)
    assert boxes.shape == (50, 7)
    assert bool(jnp.all((boxes[:, :4] >= 0) & (boxes[:, :4] <= 1)))
    assert bool(jnp.all(boxes[:, 2:4] >= boxes[:, :2]))


CONV_CASES = [
    # batch, height, width, c_in, c_out, kernel, padding
    (4, 12, 12, 16, 16, (3, 3), "VALID"),
    (4, 10, 10, 8, 16, (3, 3), "SAME"),
    (2, 9, 9, 16, 8, (4, 4), "SAME"),  # even kernel: uneven padding
    (3, 7, 7, 1, 8, (3, 3), "VALID"),  # one input channel: shifted multiply-adds
    (2, 6, 6, 3, 8, (3, 3), "SAME"),  # RGB: 27 taps, still shifted multiply-adds
    (3, 1, 10, 8, 8, (1, 3), "VALID"),  # a sequence as an image of height 1
]


@pytest.mark.parametrize("eigen", [True, False], ids=["eigen-kernels", "library-kernels"])
@pytest.mark.parametrize("case", CONV_CASES)
def test_cpu_conv_matches_xla_values_and_gradients(case, eigen, monkeypatch):
    # both forms: XLA's Eigen convolutions (engine.runtime.compiler) and the YNNPACK library's
    import engine.nn.layers

    monkeypatch.setattr(engine.nn.layers, "eigen_convolutions", lambda: eigen)
    n, h, w, c_in, c_out, kernel, padding = case
    x = jax.random.normal(jax.random.PRNGKey(0), (n, h, w, c_in))
    k = jax.random.normal(jax.random.PRNGKey(1), (*kernel, c_in, c_out)) * 0.2
    pads = same_padding(kernel) if padding == "SAME" else ((0, 0), (0, 0))

    def loss(impl):
        return jax.jit(
            jax.value_and_grad(
                lambda a, b: jnp.sum(jnp.tanh(conv_nhwc(a, b, (1, 1), pads, impl)) ** 2),
                argnums=(0, 1),
            )
        )

    (v_cpu, g_cpu), (v_xla, g_xla) = loss("cpu")(x, k), loss("xla")(x, k)
    np.testing.assert_allclose(v_cpu, v_xla, rtol=1e-5)
    for a, b in zip(g_cpu, g_xla, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_weight_gradient_in_uneven_chunks_matches_xla(monkeypatch):
    # 5 images, 2 per scan step: three chunks, the last padded with a zero image
    import engine.nn.layers

    x = jax.random.normal(jax.random.PRNGKey(0), (5, 6, 6, 8))
    dy = jax.random.normal(jax.random.PRNGKey(1), (5, 6, 6, 4))
    w = jnp.zeros((3, 3, 8, 4))
    pads = same_padding((3, 3))
    monkeypatch.setattr(engine.nn.layers, "_CHUNK_ELEMENTS", 2 * 6 * 6 * 9 * 8)
    got = engine.nn.layers._weight_grad(x, dy, (3, 3), pads)
    xla = lambda b: lax.conv_general_dilated(  # noqa: E731
        x, b, (1, 1), pads, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    np.testing.assert_allclose(got, jax.vjp(xla, w)[1](dy)[0], rtol=1e-4, atol=1e-4)


def test_conv_layer_on_sequences_and_strides():
    seq = Conv(4, (3,), impl="cpu")
    y, _ = jax.jit(seq.init_with_output)(jax.random.PRNGKey(0), jnp.ones((2, 10, 3)))
    assert y.shape == (2, 10, 4)
    strided = Conv(4, (3, 3), strides=(2, 2), impl="cpu")
    y, _ = jax.jit(strided.init_with_output)(jax.random.PRNGKey(0), jnp.ones((2, 9, 9, 3)))
    assert y.shape == (2, 5, 5, 4)


@pytest.mark.parametrize("impl", ["cpu", "xla"])
def test_pool_matches_reduce_window(impl):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 6, 3))
    expected = lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    np.testing.assert_array_equal(pool(x, "max", impl=impl), expected)
    np.testing.assert_allclose(
        pool(x[:, 0], "avg", impl=impl), x[:, 0, :6].reshape(2, 3, 2, 3).mean(axis=2), rtol=1e-6
    )


@pytest.mark.parametrize("impl", ["cpu", "xla"])
@pytest.mark.parametrize("shape", [(2, 7, 6, 3), (2, 9, 3)])
def test_max_pool_gradient_matches_jnp_max_with_ties(shape, impl):
    # small integers make ties within a window common; jnp.max shares the gradient among them
    x = jnp.round(jax.random.uniform(jax.random.PRNGKey(0), shape) * 3)
    weights = jax.random.normal(jax.random.PRNGKey(1), pool(x, "max").shape)

    def reference(a):
        if a.ndim == 3:
            return jnp.max(a[:, :8].reshape(2, 4, 2, 3), axis=2)
        return jnp.max(a[:, :6].reshape(2, 3, 2, 3, 2, 3), axis=(2, 4))

    np.testing.assert_array_equal(pool(x, "max", impl=impl), reference(x))
    got = jax.grad(lambda a: jnp.sum(pool(a, "max", impl=impl) * weights))(x)
    want = jax.grad(lambda a: jnp.sum(reference(a) * weights))(x)
    np.testing.assert_allclose(got, want, rtol=1e-6)
