"""JAX's persistent compilation cache, on by default, and the compile time a run spent.

``enable_compile_cache`` points JAX at a user cache folder
(``$XDG_CACHE_HOME/advisor/jax``, else ``~/.cache/advisor/jax``) so a second
run of the same model loads its compiled programs instead of compiling them
again.  ``ADVISOR_COMPILE_CACHE=0`` turns it off, a path moves it; a
``JAX_COMPILATION_CACHE_DIR`` already set (the test suite sets one per
session) is left to JAX.  ``CompileClock`` sums JAX's own tracing, lowering
and compile (or cache load) durations, for the run summary.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "ADVISOR_COMPILE_CACHE"
MIN_COMPILE_SECONDS = 0.1
_OFF = {"0", "off", "false", "no"}
# JAX's events, in seconds: tracing to a jaxpr, lowering to MLIR, XLA compile or cache load
_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)


def default_cache_dir() -> Path:
    """The user cache folder for compiled programs."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "advisor" / "jax"


def enable_compile_cache(setting: str | None = None) -> str | None:
    """Turn the persistent cache on (unless ``setting``/``ADVISOR_COMPILE_CACHE`` says off).

    Returns:
        The cache folder in use, or None when the cache is off.
    """
    import jax

    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    value = setting if setting is not None else os.environ.get(ENV, "")
    if value.strip().lower() in _OFF:
        return None
    folder = Path(value) if value.strip() and value.strip().lower() not in {"1", "on"} else None
    folder = folder or default_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a cache that cannot be written is no reason to refuse a run
    jax.config.update("jax_compilation_cache_dir", str(folder))
    if not os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"):
        # JAX keeps only programs that took a second to compile; a small model's epoch,
        # evaluation and summary take less each, and together make its start-up
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return str(folder)


class CompileClock:
    """Seconds JAX spent tracing, lowering and compiling (or loading cached programs)."""

    _total = 0.0
    _registered = False

    def __init__(self) -> None:
        CompileClock._register()
        self.start = CompileClock._total

    @classmethod
    def _register(cls) -> None:
        if cls._registered:
            return
        import jax

        def listen(event: str, duration: float, **_: object) -> None:
            if event in _EVENTS:
                cls._total += duration

        jax.monitoring.register_event_duration_secs_listener(listen)
        cls._registered = True

    @property
    def seconds(self) -> float:
        return CompileClock._total - self.start
