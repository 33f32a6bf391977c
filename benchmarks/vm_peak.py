"""Run the ``advisor`` command in this process and print its peak address space and RSS at exit.

python benchmarks/vm_peak.py run plan.json --out RUN     # any advisor arguments

``VmPeak`` is what ``ulimit -v`` limits (reserved address space, touched or
not); ``VmHWM`` is the peak resident memory.  A sampling thread also prints
where ``VmSize`` moved by 50 MB or more (time since start, VmSize, RSS, threads)
to show which part of a run needs the space (Linux only: /proc/self/status).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time

START = time.time()
SAMPLES: list[tuple[float, int, int, int]] = []


def status() -> dict[str, int]:
    """VmPeak, VmSize, VmHWM, VmRSS (MiB) and Threads from /proc/self/status."""
    out = {}
    with open("/proc/self/status") as lines:
        for line in lines:
            name, _, value = line.partition(":")
            if name in ("VmPeak", "VmSize", "VmHWM", "VmRSS"):
                out[name] = int(value.split()[0]) // 1024
            elif name == "Threads":
                out[name] = int(value)
    return out


def sample(every: float) -> None:
    while True:
        now = status()
        SAMPLES.append((time.time() - START, now["VmSize"], now["VmRSS"], now["Threads"]))
        time.sleep(every)


def report() -> None:
    now = status()
    sys.stderr.write(f"VmPeak {now['VmPeak']} MiB  VmHWM {now['VmHWM']} MiB\n")
    last = None
    for seconds, size, rss, threads in SAMPLES:
        if last is None or abs(size - last) >= 50:
            sys.stderr.write(
                f"  {seconds:8.1f} s  VmSize {size} MiB  RSS {rss} MiB  threads {threads}\n"
            )
            last = size


if __name__ == "__main__":
    threading.Thread(
        target=sample, args=(float(os.environ.get("VM_EVERY", "1")),), daemon=True
    ).start()
    atexit.register(report)
    from advisor.cli import main

    sys.argv = ["advisor", *sys.argv[1:]]
    main()
