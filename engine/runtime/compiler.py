"""How the engine compiles: ``jax.jit`` with the XLA options measured fastest per backend.

XLA:CPU (jax 0.10.2) hands convolutions and matrix products to a library
(YNNPACK) by default, and its convolutions are the slow ones on the dev CPU
(``benchmarks/engine_bench.py --kernels``; figures in benchmarks/RESULTS.md).
So on CPU every engine program that convolves is compiled with the library kept
to everything but convolutions (:data:`CPU_OPTIONS`), per compilation, without
touching ``XLA_FLAGS`` or any program the user compiles.  A jaxlib that does not
know the option compiles without it (checked once on a tiny program), and the
CPU kernels in ``engine.nn.layers`` then take the forms fastest under the library
(``eigen_convolutions()`` says which).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

# XLA debug options for CPU programs with convolutions: the YNNPACK library keeps its
# dot, elementwise and reduction fusions; convolutions run on XLA's Eigen kernels.
CPU_OPTIONS: dict[str, str] = {
    "xla_cpu_experimental_ynn_fusion_type": ",".join(
        f"LIBRARY_FUSION_TYPE_{kind}" for kind in ("DOT", "ELTWISE", "REDUCE", "INDIVIDUAL_DOT")
    )
}


@functools.cache
def _cpu_options_supported() -> bool:
    """Whether this jaxlib accepts :data:`CPU_OPTIONS` (an unknown option fails the compile)."""
    try:
        jax.jit(lambda a: a + 1, compiler_options=CPU_OPTIONS).lower(1.0).compile()
    except Exception:  # noqa: BLE001 - any refusal means: compile without the options
        return False
    return True


def eigen_convolutions() -> bool:
    """Whether engine programs on this CPU run convolutions on XLA's Eigen kernels."""
    return jax.default_backend() == "cpu" and _cpu_options_supported()


def _traced(tree: Any) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def jit(fun: Callable | None = None, **kwargs: Any) -> Callable:
    """``jax.jit`` with :data:`CPU_OPTIONS` for CPU programs that hold a convolution.

    Use as ``@jit`` or ``jit(f, donate_argnums=0)``.  On the first call the program is
    traced to see whether it convolves: only those take the options (an MLP
    runs faster with the library's fused dot products: 126k against 96k samples/s on
    the digits MLP).  The decision is made once per wrapped function, so wrap the
    functions of one model (every engine call site builds its own).  JAX accepts
    compiler options only on a top-level program, so a call from inside another
    traced function (an evaluation vmapped over trials) takes a plain ``jax.jit``:
    it becomes part of the outer program and its options.
    ``f.options_for(*args)`` says which options a top-level call compiles with;
    ``f.lower(*args)`` lowers that program.
    """
    if fun is None:
        return functools.partial(jit, **kwargs)
    plain = jax.jit(fun, **kwargs)
    if not eigen_convolutions():
        return plain
    tuned = jax.jit(fun, compiler_options=dict(CPU_OPTIONS), **kwargs)
    convolves: list[bool] = []  # decided on the first top-level call

    def chosen(args: tuple, kw: dict) -> Callable:
        if _traced((args, kw)):
            return plain
        if not convolves:
            # tracing is shared with the call that follows (JAX caches it); lowering is not
            convolves.append("conv_general_dilated" in str(plain.trace(*args, **kw).jaxpr))
        return tuned if convolves[0] else plain

    @functools.wraps(fun)
    def call(*args: Any, **kw: Any) -> Any:
        return chosen(args, kw)(*args, **kw)

    call.lower = lambda *args, **kw: chosen(args, kw).lower(*args, **kw)  # type: ignore[attr-defined]
    call.options_for = lambda *args, **kw: (  # type: ignore[attr-defined]
        dict(CPU_OPTIONS) if chosen(args, kw) is tuned else {}
    )
    return call
