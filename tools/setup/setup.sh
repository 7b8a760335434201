#!/usr/bin/env bash
# One-command set-up: a virtual environment in .venv/ with torch, mmcv (built
# with its ops, cached), mmengine, mmdet, pycocotools, mmpretrain (for
# ImageNet pretraining), onnx, onnxruntime, openvino and nncf (for the deployment) and this
# project (editable). Safe to run again:
# finished steps are skipped.
#
# mmcv's ops are built with CUDA kernels when torch is a CUDA build, nvcc
# matches it and a GPU is visible, for the CPU otherwise; either way one line
# says which and why (tools/setup/detect_cuda.py).
#
#   bash tools/setup/setup.sh            # or: make setup
#
# Environment overrides:
#   PYTHON        interpreter that creates the venv (default python3)
#   VENV          where the venv goes (default .venv)
#   TORCH_SPEC    torch packages to install (default "torch==2.14.1 torchvision==0.29.1")
#   FORCE_CUDA    1: CUDA ops even without a visible GPU; 0: CPU ops only
#   TORCH_CUDA_ARCH_LIST, MAX_JOBS   passed to tools/setup/install_mmcv.sh
#
# A machine without network that has its own torch: tools/setup/wheelhouse.sh
# and tools/setup/offline_setup.sh instead (docs/gpu.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
VPY="$VENV/bin/python"
STAMP="$VENV/.shufflenet_det_setup"

step() { printf '\n==> [%s] %s\n' "$1" "$2"; }
smoke() {
  "$VPY" -c 'import shufflenet_det, mmdet, mmpretrain, onnx, onnxruntime
import openvino, nncf
from mmcv.ops import nms, RoIAlign' 2>/dev/null
}
# What the set-up depends on: if none of it changed, the smoke check passes
# and mmcv's ops are still the right ones (e.g. no GPU has appeared since a
# CPU build), there is nothing to do.
fingerprint=$(cat setup.py tools/setup/{setup.sh,install_mmcv.sh,detect_cuda.py} | cksum)
if [ -x "$VPY" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$fingerprint" ] && smoke &&
   ops=$("$VPY" tools/setup/detect_cuda.py --check-installed 2>/dev/null); then
  echo "==> Set-up is complete ($VENV; mmcv $ops). Nothing to do."
  exit 0
fi

start=$(date +%s)
step 1/5 "Python virtual environment in $VENV"
if [ -x "$VPY" ]; then
  echo "$VENV exists."
else
  "$PYTHON" -m venv "$VENV"
fi
"$VPY" -m pip install -q --upgrade pip wheel 2>&1 | grep -v '^WARNING: Location' || true

step 2/5 "PyTorch ($TORCH_SPEC)"
if "$VPY" -c 'import torch, torchvision' 2>/dev/null; then
  "$VPY" -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, "already installed.")'
else
  # shellcheck disable=SC2086
  "$VPY" -m pip install $TORCH_SPEC 2>&1 | grep -v '^WARNING: Location' || true
  "$VPY" -c 'import torch, torchvision' || { echo "torch failed to install" >&2; exit 1; }
fi

step 3/5 "mmcv with compiled ops (tools/setup/install_mmcv.sh)"
# Installed even when FORCE_CUDA=1 builds CUDA ops without a GPU here (the
# set-up's own environment; install_mmcv.sh alone only caches that wheel).
PYTHON="$VPY" MMCV_INSTALL="${MMCV_INSTALL:-1}" bash tools/setup/install_mmcv.sh

step 4/5 "mmengine, mmdet, pycocotools, pytest, mmpretrain, onnx, onnxruntime and shufflenet_det (editable)"
# mmpretrain's, onnx's and onnxruntime's requirements leave torch, mmcv,
# mmengine and mmdet as they are.
"$VPY" -m pip install -q -e '.[tests,pretrain,deploy]' 2>&1 | grep -v '^WARNING: Location' || true

step 5/5 "Smoke check"
"$VPY" -c 'import torch, mmcv, mmengine, mmdet, mmpretrain, shufflenet_det
import onnx, onnxruntime, openvino
from mmcv.ops import nms, RoIAlign, get_compiling_cuda_version
print("torch", torch.__version__, "| mmcv", mmcv.__version__, "(CUDA ops:",
      get_compiling_cuda_version() + ") | mmengine", mmengine.__version__,
      "| mmdet", mmdet.__version__, "| mmpretrain", mmpretrain.__version__,
      "| onnxruntime", onnxruntime.__version__, "| openvino", openvino.__version__,
      "| shufflenet_det", shufflenet_det.__version__)'
echo "$fingerprint" > "$STAMP"
echo "==> Set-up finished in $(( $(date +%s) - start )) s. Activate with: source $VENV/bin/activate"
