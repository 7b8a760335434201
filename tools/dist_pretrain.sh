#!/usr/bin/env bash
# Multi-process ImageNet pretraining (tools/pretrain.py) with torchrun and
# mmengine's pytorch launcher; the same variables as tools/dist_train.sh.
#   bash tools/dist_pretrain.sh CONFIG NUM_PROCS [pretrain.py options]
HERE=$(cd "$(dirname "$0")" && pwd)
TRAIN_SCRIPT="$HERE/pretrain.py" exec bash "$HERE/dist_train.sh" "$@"
