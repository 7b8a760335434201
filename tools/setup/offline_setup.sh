#!/usr/bin/env bash
# Set the project up on a machine without network that already has torch and
# torchvision (a GPU cluster node, an image with torch preinstalled), from a
# folder made by tools/setup/wheelhouse.sh: nothing is downloaded, torch is left
# as it is, and mmcv's ops are built there, for the GPU it finds, on all cores.
#
#   bash tools/setup/offline_setup.sh WHEELHOUSE
#
# Environment:
#   PYTHON   the interpreter that has torch (default python3). Inside a
#            virtual environment it is set up in place; otherwise a new
#            VENV (default .venv) is made on top of it
#            (--system-site-packages: its torch, numpy, cv2... stay in use).
#   VENV, MAX_JOBS (default: all cores), FORCE_CUDA, TORCH_CUDA_ARCH_LIST:
#            as for tools/setup/setup.sh and tools/setup/install_mmcv.sh.
#
# Needs torch >= 2.1 (the oldest with torch.utils.flop_counter, which the
# FLOPs tools use); tested with torch 2.11.0 (Python 3.12) and 2.14.1
# (Python 3.11). Ends with a smoke check; docs/gpu.md has the whole recipe.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -eq 1 ] || { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
WH=$(cd "$1" 2>/dev/null && pwd) || {
  echo "offline_setup.sh: no folder $1 (make it with tools/setup/wheelhouse.sh)" >&2
  exit 1; }
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
MIN_TORCH=2.1
start=$(date +%s)
step() { printf '\n==> [%s] %s (%d s)\n' "$1" "$2" $(( $(date +%s) - start )); }

SDIST=$(ls "$WH"/mmcv-*.tar.gz 2>/dev/null | head -1 || true)
if [ -z "$SDIST" ] || ! ls "$WH"/mmengine-*.whl >/dev/null 2>&1; then
  echo "offline_setup.sh: $WH has no mmcv-*.tar.gz or mmengine wheel: make" \
       "it with tools/setup/wheelhouse.sh on a machine with network." >&2
  exit 1
fi
# Every pip call below, install_mmcv.sh's included, reads only the folder.
export PIP_NO_INDEX=1 PIP_FIND_LINKS="$WH" PIP_DISABLE_PIP_VERSION_CHECK=1

step 1/5 "torch of $PYTHON"
"$PYTHON" - "$MIN_TORCH" <<'PY' || exit 1
import sys
try:
    import torch, torchvision
except ImportError as e:
    sys.exit(f'offline_setup.sh: {sys.executable} cannot import {e.name}: '
             'install torch and torchvision there first, or point PYTHON at '
             'the interpreter that has them.')
have = tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2])
need = tuple(int(x) for x in sys.argv[1].split('.'))
if have < need:
    sys.exit(f'offline_setup.sh: torch {torch.__version__} is older than '
             f'{sys.argv[1]}, the oldest this project supports.')
print(f'torch {torch.__version__} (CUDA {torch.version.cuda}, '
      f'{torch.cuda.device_count()} GPU(s) visible), torchvision '
      f'{torchvision.__version__}, Python {sys.version.split()[0]}')
PY
if "$PYTHON" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
  VPY=$("$PYTHON" -c 'import sys; print(sys.executable)')
  echo "Setting up in place: $VPY is in a virtual environment."
else
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv --system-site-packages "$VENV"
  VPY="$VENV/bin/python"
  echo "Virtual environment $VENV on top of $PYTHON."
fi

step 2/5 "mmengine, mmdet, pycocotools and their requirements from $WH"
"$VPY" -m pip install -q setuptools wheel ninja packaging
# mmengine asks for opencv-python by that name; where a cv2 is there already
# (opencv-python-headless, a conda OpenCV), its other requirements only.
"$VPY" -m pip install -q --no-deps "$WH"/mmengine-*.whl
mapfile -t REQS < <("$VPY" - <<'PY'
import importlib, importlib.metadata as md, re
try:
    importlib.import_module('cv2')
    have_cv2 = True
except ImportError:
    have_cv2 = False
for req in md.requires('mmengine') or []:
    name = re.match(r'[A-Za-z0-9_.-]+', req).group(0).lower()
    if ';' in req or (have_cv2 and name.startswith('opencv')):
        continue
    print(req)
PY
)
"$VPY" -m pip install -q "${REQS[@]}" 'mmdet>=3.3.0,<3.4.0' pycocotools \
  addict Pillow pyyaml yapf
if ls "$WH"/onnxruntime-*.whl >/dev/null 2>&1; then
  "$VPY" -m pip install -q onnx onnxruntime
fi

step 3/5 "shufflenet_det (editable, no dependency resolution: torch stays)"
"$VPY" -m pip install -q --no-deps --no-build-isolation -e .

step 4/5 "mmcv's ops from $(basename "$SDIST") (tools/setup/install_mmcv.sh)"
# nproc alone would honour OMP_NUM_THREADS, often 1 on such machines.
PYTHON="$VPY" MMCV_SDIST="$SDIST" \
  MAX_JOBS="${MAX_JOBS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}" \
  bash tools/setup/install_mmcv.sh

step 5/5 "Smoke check"
"$VPY" - <<'PY'
import torch, torchvision, mmcv, mmengine, mmdet, shufflenet_det
from mmcv.ops import RoIAlign, get_compiling_cuda_version, nms
from torchvision.ops import ps_roi_align
devices = ['cpu'] + (['cuda'] if torch.cuda.is_available()
                     and get_compiling_cuda_version() != 'not available'
                     else [])
for dev in devices:
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]], device=dev)
    keep = nms(boxes, torch.tensor([0.9, 0.8], device=dev), 0.5)[1]
    feat = torch.rand(1, 10 * 49, 16, 16, device=dev)
    rois = torch.tensor([[0., 0., 0., 8., 8.]], device=dev)
    pooled = RoIAlign((7, 7), 1.0, 2)(feat, rois)
    ps = ps_roi_align(feat, rois, 7, 1.0, 2)
    assert keep.tolist() == [0] and pooled.shape == (1, 490, 7, 7) and \
        ps.shape == (1, 10, 7, 7), (dev, keep, pooled.shape, ps.shape)
print('smoke check passed on', ' and '.join(devices) + ':', 'torch',
      torch.__version__, '| torchvision', torchvision.__version__, '| mmcv',
      mmcv.__version__, '(CUDA ops:', get_compiling_cuda_version() + ')',
      '| mmengine', mmengine.__version__, '| mmdet', mmdet.__version__,
      '| shufflenet_det', shufflenet_det.__version__)
PY
echo "==> Offline set-up finished in $(( $(date +%s) - start )) s; python: $VPY"
