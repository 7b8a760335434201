#!/usr/bin/env bash
# Multi-process training with torchrun and mmengine's pytorch launcher.
#   bash tools/dist_train.sh CONFIG NUM_PROCS [train.py options]
# NNODES, NODE_RANK, MASTER_ADDR and PORT set a multi-node run.
#
# Pre-emption: SIGTERM, SIGUSR1, SIGUSR2 or SIGHUP sent to this script is
# passed to every training process (torchrun alone forwards only some
# signals, and kills the processes 30 s later). They stop after the same
# iteration, one checkpoint is written (SIGTERM always; the others when
# named with --preempt-signal), and this script exits with status 124:
# run it again with --resume to continue.
set -euo pipefail
CONFIG=$1
NPROCS=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
HERE=$(cd "$(dirname "$0")" && pwd)
# tools/dist_pretrain.sh and slurm_pretrain.sh run tools/pretrain.py instead.
TRAIN_SCRIPT=${TRAIN_SCRIPT:-$HERE/train.py}
PYTHON=${PYTHON:-$( [ -x "$HERE/../.venv/bin/python" ] && echo "$HERE/../.venv/bin/python" || echo python)}
# The training processes write here when pre-empted (torchrun reports their
# exit status 124 as a failure, 1).
MARKER=$(mktemp "${TMPDIR:-/tmp}/shufflenet_det_preempted.XXXXXX")
trap 'rm -f "$MARKER"' EXIT

PYTHONPATH="$HERE/..:${PYTHONPATH:-}" SHUFFLENET_DET_PREEMPTED_FILE="$MARKER" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROCS" --master_port="$PORT" \
    "$TRAIN_SCRIPT" "$CONFIG" --launcher pytorch "$@" &
TORCHRUN=$!

forward() {  # the signal to torchrun's children: the training processes
    local pid
    for pid in $(cat /proc/"$TORCHRUN"/task/*/children 2>/dev/null); do
        kill -s "$1" "$pid" 2>/dev/null || true
    done
}
for sig in TERM USR1 USR2 HUP; do
    # shellcheck disable=SC2064
    trap "forward $sig" "$sig"
done

# `wait` returns early when a trapped signal arrives: wait again until
# torchrun has really ended.
status=0
while :; do
    status=0
    wait "$TORCHRUN" || status=$?
    kill -0 "$TORCHRUN" 2>/dev/null || break
done
if [ "$status" -gt 128 ]; then  # interrupted, then it ended: its own status
    s=0; wait "$TORCHRUN" 2>/dev/null || s=$?
    [ "$s" -ne 127 ] && status=$s
fi
if [ -s "$MARKER" ]; then
    echo "Pre-empted: $(head -n 1 "$MARKER"). Continue with the same command and --resume." >&2
    exit 124
fi
if [ "$status" -ne 0 ]; then
    # One rank died (killed, out of memory, an error): torchrun stopped the
    # others, whose collectives failed with "Connection closed by peer".
    echo "Training failed (torchrun exit status $status): the rank that failed first is under \"Root Cause\" above. Checkpoints are written whole, so the last one in the work dir is complete: after fixing the cause, run the same command with --resume to continue." >&2
fi
exit "$status"
