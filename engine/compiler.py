"""How the engine compiles: ``jax.jit`` with the XLA options measured fastest per backend.

XLA:CPU (jax 0.10.2) hands convolutions and matrix products to a library
(YNNPACK) by default.  Its convolutions are the slow ones on the 2-core dev CPU
(``benchmarks/engine_bench.py --kernels``, batch 128, 26x26x32 -> 64, 3x3):
forward 79-97 ms against 15 ms for XLA's own Eigen convolution, and a weight
gradient 98-105 ms against 25 ms; its matrix products are as fast as Eigen's or
a little faster (73,728 x 288 x 64: 15 ms against 18 ms).  So on CPU every
engine program is compiled with the library kept to matrix products
(:data:`CPU_OPTIONS`), per compilation, without touching ``XLA_FLAGS`` or any
program the user compiles.  A jaxlib that does not know the option compiles
without it (checked once by compiling a tiny program), and the CPU kernels in
``engine.layers`` then take the forms measured fastest under the library
(``eigen_convolutions()`` says which).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

# XLA debug options for CPU compilations: the YNNPACK library only for single
# dot products, convolutions on XLA's Eigen kernels.
CPU_OPTIONS: dict[str, str] = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
}


@functools.cache
def _cpu_options_supported() -> bool:
    """Whether this jaxlib accepts :data:`CPU_OPTIONS` (an unknown option fails the compile)."""
    try:
        jax.jit(lambda a: a + 1, compiler_options=CPU_OPTIONS).lower(1.0).compile()
    except Exception:  # noqa: BLE001 - any refusal means: compile without the options
        return False
    return True


def compiler_options() -> dict[str, str]:
    """The options for a program compiled on the default backend (none off CPU)."""
    if jax.default_backend() != "cpu" or not _cpu_options_supported():
        return {}
    return dict(CPU_OPTIONS)


def eigen_convolutions() -> bool:
    """Whether engine programs on this CPU run convolutions on XLA's Eigen kernels."""
    return jax.default_backend() == "cpu" and _cpu_options_supported()


def _traced(tree: Any) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def jit(fun: Callable | None = None, **kwargs: Any) -> Callable:
    """``jax.jit`` with :func:`compiler_options`, as ``@jit`` or ``jit(f, donate_argnums=0)``.

    JAX accepts compiler options only on a top-level program, so a call from inside
    another traced function (an evaluation vmapped over trials) takes a plain
    ``jax.jit``: it becomes part of the outer program, compiled with the outer options.
    """
    if fun is None:
        return functools.partial(jit, **kwargs)
    options = compiler_options()
    plain = jax.jit(fun, **kwargs)
    if not options:
        return plain
    top_level = jax.jit(fun, compiler_options=options, **kwargs)

    @functools.wraps(fun)
    def call(*args: Any, **kw: Any) -> Any:
        return (plain if _traced((args, kw)) else top_level)(*args, **kw)

    call.lower = top_level.lower  # type: ignore[attr-defined]
    return call
