"""Under ``ulimit -v`` a run sets glibc's malloc to spend less address space (engine.runtime.address_space)."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import textwrap

import pytest

# 16 threads each allocate (one arena apiece by glibc's rule) and report VmSize's growth.
_PROBE = textwrap.dedent(
    """
    import threading
    from engine.runtime.address_space import limit_malloc

    did = limit_malloc()

    def vmsize():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize"):
                return int(line.split()[1]) * 1024

    before = vmsize()
    barrier = threading.Barrier(17)
    held = []

    def work():
        held.append(bytearray(300_000))  # above pymalloc's sizes: malloc in this thread
        barrier.wait()
        barrier.wait()

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    barrier.wait()
    grown = vmsize() - before
    barrier.wait()
    for t in threads:
        t.join()
    print(did, grown)
    """
)
# A freed 10 MB block raises glibc's mmap threshold; how far does a 5 MB block then move the heap?
_HEAP = textwrap.dedent(
    """
    import ctypes, ctypes.util
    from engine.runtime.address_space import limit_malloc

    did = limit_malloc()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.sbrk.restype, libc.sbrk.argtypes = ctypes.c_void_p, [ctypes.c_ssize_t]
    first = bytearray(10 << 20)
    del first
    before = libc.sbrk(0)
    block = bytearray(5 << 20)
    print(did, libc.sbrk(0) - before)
    """
)
CAP = 4 * 2**30

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="glibc's arenas and /proc are Linux's",
)


def _probe(cap: int | None, env: dict, code: str = _PROBE) -> tuple[bool, int]:
    def limit():
        if cap is not None:
            resource.setrlimit(resource.RLIMIT_AS, (cap, resource.RLIM_INFINITY))

    base = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    env = {**base, "PYTHONPATH": os.pathsep.join(sys.path), **env}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        preexec_fn=limit,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    did, grown = done.stdout.split()
    return did == "True", int(grown)


@glibc
def test_a_capped_process_makes_few_arenas():
    limited, limited_growth = _probe(CAP, {})
    _, default_growth = _probe(CAP, {"MALLOC_ARENA_MAX": "32"})  # the user's value is kept
    assert limited
    # each arena glibc makes reserves 64 MiB: at least 8 fewer of them
    assert default_growth - limited_growth >= 8 * 64 * 2**20


@glibc
def test_a_capped_process_maps_big_blocks_instead_of_growing_the_heap():
    assert _probe(CAP, {}, _HEAP) == (True, 0)
    # glibc's own rule (a threshold raised to 10 MB, as an explicit value keeps it): the heap grows
    _, grown = _probe(CAP, {"MALLOC_MMAP_THRESHOLD_": str(32 << 20)}, _HEAP)
    assert grown >= 5 << 20
    both = {"MALLOC_ARENA_MAX": "8", "MALLOC_MMAP_THRESHOLD_": str(32 << 20)}
    assert _probe(CAP, both, _HEAP)[0] is False  # both set by the user: nothing to do


@glibc
def test_without_a_cap_nothing_changes():
    assert _probe(None, {})[0] is False
