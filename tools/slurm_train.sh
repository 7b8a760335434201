#!/usr/bin/env bash
# Training on a Slurm cluster with mmengine's slurm launcher.
#   GPUS=16 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
# GPUS (total), GPUS_PER_NODE, CPUS_PER_TASK and SRUN_ARGS tune the allocation.
#
# Pre-emption and time limits: SIGTERM, SIGUSR1, SIGUSR2 or SIGHUP sent to
# this script go to srun, which passes them to every task; the tasks stop
# after the same iteration, one checkpoint is written, and srun and this
# script exit with status 124. In a batch script (docs/robustness.md):
#   #SBATCH --signal=B:USR1@120     # USR1 to the batch shell 120 s before the limit
#   #SBATCH --requeue
#   trap 'kill -USR1 $PID' USR1
#   GPUS=16 bash tools/slurm_train.sh PART JOB CONFIG WORK_DIR --resume --preempt-signal USR1 &
#   PID=$!; while :; do wait $PID && s=0 || s=$?; kill -0 $PID 2>/dev/null || break; done
#   [ "$s" = 124 ] && scontrol requeue "$SLURM_JOB_ID"
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
HERE=$(cd "$(dirname "$0")" && pwd)
# tools/dist_pretrain.sh and slurm_pretrain.sh run tools/pretrain.py instead.
TRAIN_SCRIPT=${TRAIN_SCRIPT:-$HERE/train.py}

# shellcheck disable=SC2086
PYTHONPATH="$HERE/..:${PYTHONPATH:-}" \
srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 $SRUN_ARGS \
    python -u "$TRAIN_SCRIPT" "$CONFIG" --work-dir="$WORK_DIR" --launcher slurm "$@" &
SRUN=$!
for sig in TERM USR1 USR2 HUP; do
    # shellcheck disable=SC2064
    trap "kill -s $sig $SRUN 2>/dev/null || true" "$sig"
done
# `wait` returns early when a trapped signal arrives: wait until srun ends.
status=0
while :; do
    status=0
    wait "$SRUN" || status=$?
    kill -0 "$SRUN" 2>/dev/null || break
done
if [ "$status" -gt 128 ]; then  # interrupted, then it ended: its own status
    s=0; wait "$SRUN" 2>/dev/null || s=$?
    [ "$s" -ne 127 ] && status=$s
fi
exit "$status"
