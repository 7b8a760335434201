#!/usr/bin/env bash
# ImageNet pretraining (tools/pretrain.py) on a Slurm cluster with mmengine's
# slurm launcher; the same variables as tools/slurm_train.sh.
#   GPUS=16 bash tools/slurm_pretrain.sh PARTITION JOB_NAME CONFIG WORK_DIR [pretrain.py options]
HERE=$(cd "$(dirname "$0")" && pwd)
TRAIN_SCRIPT="$HERE/pretrain.py" exec bash "$HERE/slurm_train.sh" "$@"
