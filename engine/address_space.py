"""Fewer malloc arenas when the process's address space is capped (``ulimit -v``).

glibc gives each thread that allocates concurrently its own arena and reserves
64 MiB of address space for each (up to 8 per core).  XLA's thread pools make
twenty-odd threads, so a run holds about a gigabyte of reserved, never-touched
address space: nothing to the resident memory, but it counts against
``RLIMIT_AS``, and under a cap of a few GiB it is what a streamed run runs out
of (figures in benchmarks/RESULTS.md, "Scale").  Under a finite cap (and when
``MALLOC_ARENA_MAX`` does not already say) the arenas are limited to
``ARENAS``; without a cap nothing changes.  Call it before jax starts its
backend: arenas already made are kept.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource

# mallopt's parameter number for the arena limit (glibc's malloc.h: M_ARENA_MAX).
M_ARENA_MAX = -8
# Arenas kept under a cap: the main one and one shared by the other threads.
ARENAS = 2


def capped() -> bool:
    """Whether the address space has a finite soft limit (``ulimit -v``)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return soft != resource.RLIM_INFINITY


def limit_malloc_arenas() -> bool:
    """Limit glibc's arenas to ``ARENAS`` under a capped address space; True if it did.

    A no-op (False) without a cap, when ``MALLOC_ARENA_MAX`` is set, or without glibc.
    """
    if not capped() or "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to limit
        return False
    return bool(mallopt(M_ARENA_MAX, ARENAS))
