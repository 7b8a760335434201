#!/usr/bin/env bash
# The GPU half of Table 7 in one command, from a clean checkout on a GPU
# machine that has torch but no network (docs/gpu.md):
#
#   bash tools/gpu_table7.sh WHEELHOUSE OUT_DIR [tools/gpu_table7.py options]
#   bash tools/gpu_table7.sh --no-setup OUT_DIR [options]   # already set up
#
# 1. tools/setup/offline_setup.sh WHEELHOUSE: the project and mmcv's ops (built
#    for the visible GPU, all cores) into .venv on top of the machine's torch;
# 2. tools/gpu_table7.py --out-dir OUT_DIR: the CUDA pre-flight, the 20
#    cells and the peer in fp32 and fp16, one training step on the GPU, the
#    GPU-vs-CPU parity check; OUT_DIR/table7.{json,md,png}, rewritten as
#    each level finishes. A cut for less time: --cells shufflenetv2_140m ...,
#    --precisions fp32, --no-peer, --no-checks.
#
# With --no-setup the python is $PYTHON, else .venv/bin/python if there,
# else python3. The test suite runs it so on the CPU:
#   bash tools/gpu_table7.sh --no-setup OUT --device cpu --quick ...
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
SOURCE=$1 OUT=$2
shift 2
start=$(date +%s)
if [ "$SOURCE" = --no-setup ]; then
  if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
  fi
else
  echo "==> [gpu_table7] offline set-up from $SOURCE"
  # offline_setup.sh sets up in place when PYTHON is in a virtual
  # environment, otherwise in .venv.
  PYTHON=${PYTHON:-python3}
  log=$(mktemp)
  PYTHON="$PYTHON" bash tools/setup/offline_setup.sh "$SOURCE" | tee "$log"
  PYTHON=$(sed -n 's/^==> Offline set-up finished in .* s; python: //p' "$log")
  rm -f "$log"
  echo "==> [gpu_table7] set-up took $(( $(date +%s) - start )) s"
fi
status=0
"$PYTHON" tools/gpu_table7.py --out-dir "$OUT" "$@" || status=$?
echo "==> [gpu_table7] finished in $(( $(date +%s) - start )) s (exit $status)"
exit $status
