#!/usr/bin/env bash
# The GPU figures of benchmarks/RESULTS.md in one run (issue 17): engine vs Keras-JAX and
# PyTorch (small CNN, ResNet-18), the vmapped population against sequential trials, jax's
# loop choice on this backend, and the sharded (mesh) step against the plain one.
#
#   bash benchmarks/gpu_check.sh [LOG_DIR]      # each part's output also goes to LOG_DIR/<part>.log
#
# Each part has its own time limit so one slow part cannot starve the rest.
set -u
logs=${1:-${OUT:-/tmp/gpu_check}}
mkdir -p "$logs"
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
part() {  # part NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "=== $name: $* ($(date -u +%T))"
    timeout "$limit" "$@" 2>&1 | tee "$logs/$name.log" | grep -v "^\s*$" | tail -40
    echo "=== $name: exit ${PIPESTATUS[0]}"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import jax, flax, optax, torch; print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__, 'torch', torch.__version__)"
part engine 200 python3 benchmarks/engine_bench.py --gpu
part search4 120 python3 benchmarks/search_bench.py --gpu --epochs 4 --ways sequential,population
part search1 130 python3 benchmarks/search_bench.py --gpu
part choices 60 python3 benchmarks/engine_bench.py --choices --quick
part mesh 60 python3 benchmarks/scale_bench.py --devices 1,1m
