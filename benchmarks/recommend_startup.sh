#!/usr/bin/env bash
# `advisor recommend PROFILE` as a whole process: interpreter start, imports, rule
# loading, inference, validation and the printed summary.  Target: under 0.3 s.
#
#   benchmarks/recommend_startup.sh [PROFILE] [RUNS]
#
# Uses hyperfine when it is installed, else a Python timing loop over subprocesses
# (3 warm-up runs, then RUNS timed ones: wall-clock median, min and p90, and the
# process's CPU time, which other work on the machine disturbs less).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-examples/profiles/digits_mlp.json}
RUNS=${2:-30}
ADVISOR=${ADVISOR:-advisor}
command -v "$ADVISOR" >/dev/null || { echo "no '$ADVISOR' on PATH: pip install -e . first" >&2; exit 2; }

# Time the package as pip installs it, with its bytecode compiled.  An environment
# that sets PYTHONDONTWRITEBYTECODE would otherwise recompile advisor/ on every run.
env -u PYTHONDONTWRITEBYTECODE python -m compileall -q advisor >/dev/null

if command -v hyperfine >/dev/null; then
  exec hyperfine --warmup 3 --runs "$RUNS" --output=null "$ADVISOR recommend $PROFILE"
fi

python - "$ADVISOR" "$PROFILE" "$RUNS" <<'PY'
import resource
import statistics
import subprocess
import sys
import time

advisor, profile, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
command = [advisor, "recommend", profile]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


for _ in range(3):
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
wall, cpu = [], []
for _ in range(runs):
    start, start_cpu = time.perf_counter(), cpu_seconds()
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    wall.append(time.perf_counter() - start)
    cpu.append(cpu_seconds() - start_cpu)
wall.sort()
p90 = wall[int(0.9 * (len(wall) - 1))]
with open("/proc/loadavg") as handle:
    load = handle.read().split()[0]
print(f"{' '.join(command)}: wall median {statistics.median(wall):.3f} s (min {wall[0]:.3f}, "
      f"p90 {p90:.3f}), CPU median {statistics.median(cpu):.3f} s, over {runs} runs; "
      f"load average {load} (target < 0.3 s)")
PY
