"""glibc's malloc set for a capped address space (``ulimit -v``): few arenas, big blocks mapped.

Two habits of glibc's malloc cost address space that ``RLIMIT_AS`` counts:

* each thread that allocates gets its own arena, and each arena reserves 64 MiB
  (up to 8 per core).  XLA's thread pools make twenty-odd threads, so a run
  holds about a gigabyte of reserved, never-touched address space;
* a freed block above the mmap threshold raises the threshold to its size (up
  to 32 MiB), so the streamed batches (about 10 MB each) then come from the
  heap, which fragments and grows by hundreds of MB over an epoch.

Under a finite cap the arenas are limited to ``ARENAS`` and blocks of
``MMAP_THRESHOLD`` or more are always mapped (and unmapped when freed), unless
``MALLOC_ARENA_MAX`` or ``MALLOC_MMAP_THRESHOLD_`` already say; without a cap
nothing changes (figures in benchmarks/RESULTS.md, "Scale").  Call it before
jax starts its backend: arenas already made are kept.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource

# mallopt's parameter numbers (glibc's malloc.h).
M_ARENA_MAX = -8
M_MMAP_THRESHOLD = -3
# Arenas kept under a cap: the main one and one shared by the other threads.
ARENAS = 2
# Blocks from this size up are mapped on their own under a cap (a fixed threshold: no raising).
MMAP_THRESHOLD = 1 << 20


def capped() -> bool:
    """Whether the address space has a finite soft limit (``ulimit -v``)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return soft != resource.RLIM_INFINITY


def limit_malloc() -> bool:
    """Under a capped address space: ``ARENAS`` arenas, blocks from ``MMAP_THRESHOLD`` mapped.

    Returns True if it set either; a no-op (False) without a cap, without glibc,
    or where the ``MALLOC_*`` environment variables already set both.
    """
    if not capped():
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to limit
        return False
    done = False
    if "MALLOC_ARENA_MAX" not in os.environ:
        done |= bool(mallopt(M_ARENA_MAX, ARENAS))
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        done |= bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return done
