#!/usr/bin/env bash
# docs/performance.md's GPU numbers in one go, on a CUDA machine that has JAX and torch but no
# package index: the overlay venv from a folder of wheels (bench/overlay_venv.sh says which),
# vision_msgs built into it, then the call variants and XLA flags (call_variants.py), the model
# against torch in turn (model_bench.py), make bench-e2e's runs and 8 rigs in one node
# (e2e_bench.py), each JSON into OUT. model_bench and e2e_bench run with the XLA flags the
# node sets (xla_flags.py).
#   bench/gpu_bench.sh <base-python> <wheels> <out-dir> [seconds-per-loop]
set -uo pipefail
base=$1 wheels=$2 out=$3 seconds=${4:-2}
venv=$(mktemp -d)/venv
log=$out/log.txt
bench/overlay_venv.sh "$base" "$wheels" "$venv" >>"$log" 2>&1 || { cat "$log"; exit 1; }
scripts/build_vision_msgs.sh "$venv" >>"$log" 2>&1 || echo "gpu_bench: vision_msgs not built" >>"$log"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
py=$venv/bin/python
run() {  # name, command...: JSON to OUT/name.json, the rest to the log
  local name=$1; shift
  local start=$SECONDS
  "$@" >"$out/$name.json" 2>>"$log"
  echo "gpu_bench: $name exit $? after $((SECONDS - start)) s" | tee -a "$log"
}
run call_variants "$py" bench/call_variants.py
run model "$py" bench/model_bench.py --seconds "$seconds"
run e2e scripts/ros_isolated.sh "$py" bench/e2e_bench.py --configs 1280x720@15 1280x720@30 \
  --profile on --reload 3 --seconds 8
run rigs scripts/ros_isolated.sh "$py" bench/e2e_bench.py --configs --rigs 1 8 \
  --rigs-camera 1280x720@15 --seconds 8
