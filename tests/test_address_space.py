"""Under ``ulimit -v`` a run limits glibc's malloc arenas, whose reserved space counts against it."""

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
    from engine.address_space import limit_malloc_arenas

    did = limit_malloc_arenas()

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
CAP = 4 * 2**30

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="glibc's arenas and /proc are Linux's",
)


def _probe(cap: int | None, env: dict) -> tuple[bool, int]:
    def limit():
        if cap is not None:
            resource.setrlimit(resource.RLIMIT_AS, (cap, resource.RLIM_INFINITY))

    base = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    env = {**base, "PYTHONPATH": os.pathsep.join(sys.path), **env}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
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
    default, default_growth = _probe(CAP, {"MALLOC_ARENA_MAX": "32"})
    assert limited and not default  # an explicit MALLOC_ARENA_MAX is the user's to keep
    # each arena glibc makes reserves 64 MiB: at least 8 fewer of them
    assert default_growth - limited_growth >= 8 * 64 * 2**20


@glibc
def test_without_a_cap_nothing_changes():
    assert _probe(None, {})[0] is False
