#!/usr/bin/env bash
# Multi-process training with torchrun and mmengine's pytorch launcher.
#   bash tools/dist_train.sh CONFIG NUM_PROCS [train.py options]
# NNODES, NODE_RANK, MASTER_ADDR and PORT set a multi-node run.
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

PYTHONPATH="$HERE/..:${PYTHONPATH:-}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROCS" --master_port="$PORT" \
    "$TRAIN_SCRIPT" "$CONFIG" --launcher pytorch "$@"
