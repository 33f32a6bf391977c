"""engine.runtime.compiler: CPU programs keep the YNNPACK library to matrix products."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from engine.runtime import compiler

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="CPU compile options")


def _conv(x, w):
    dims = ("NHWC", "HWIO", "NHWC")
    return lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=dims)


def test_convolutions_run_on_xla_kernels_not_the_library():
    x, w = jnp.ones((2, 10, 10, 32)), jnp.ones((3, 3, 32, 32))
    if not compiler.eigen_convolutions():
        pytest.skip("this jaxlib does not know the option")
    plain = jax.jit(_conv).lower(x, w).compile().as_text()
    ours = compiler.jit(_conv).lower(x, w).compile().as_text()
    assert "__ynn_fusion" in plain  # jax 0.10.2 default: the library runs this convolution
    assert "__ynn_fusion" not in ours
    np.testing.assert_allclose(compiler.jit(_conv)(x, w), jax.jit(_conv)(x, w), rtol=1e-6)


def test_only_programs_that_convolve_take_the_options():
    if not compiler.eigen_convolutions():
        pytest.skip("this jaxlib does not know the option")
    dense = compiler.jit(lambda a, b: jnp.tanh(a @ b))
    conv = compiler.jit(_conv)
    a = jnp.ones((64, 256))
    x, w = jnp.ones((2, 10, 10, 32)), jnp.ones((3, 3, 32, 32))
    assert dense.options_for(a, a.T) == {}  # an MLP keeps the library's fused dot products
    assert conv.options_for(x, w) == compiler.CPU_OPTIONS
    np.testing.assert_allclose(dense(a, a.T), jnp.tanh(a @ a.T), rtol=1e-6)


def test_a_compiled_function_can_be_called_inside_another_trace():
    # JAX takes compiler options only on a top-level jit: a nested call is plain
    inner = compiler.jit(lambda a: jnp.sin(a) * 2)
    outer = compiler.jit(jax.vmap(lambda a: inner(a) + 1))
    np.testing.assert_allclose(outer(jnp.ones((3, 2))), np.sin(1.0) * 2 + 1, rtol=1e-6)
    assert float(inner(jnp.float32(0.0))) == 0.0


def test_decorator_and_keyword_forms():
    @compiler.jit
    def double(a):
        return a * 2

    donate = compiler.jit(lambda a: a + 1, donate_argnums=0)
    assert float(double(jnp.float32(2))) == 4.0
    assert float(donate(jnp.float32(2))) == 3.0
