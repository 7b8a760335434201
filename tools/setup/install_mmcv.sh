#!/usr/bin/env bash
# Build mmcv from source with its compiled ops (RoIAlign, NMS, ...) for the torch
# installed in the current Python environment, and install it.
#
# mmdet 3.3 needs mmcv >=2.0.0rc4,<2.2.0. PyPI has mmcv 2.1.0 only as a source
# archive, and that archive pins -std=c++14/17 while recent torch headers need a
# newer standard, so tools/setup/patch_mmcv.py sets both compilers' flag to the
# one torch's own cpp_extension uses (and, for CUDA, adds the math headers that
# torch's pip wheels ship when the toolkit lacks them).
# The built wheel is cached, keyed by mmcv, torch, Python and device, so a second
# set-up installs it in seconds.
#
# CPU or CUDA ops: tools/setup/detect_cuda.py decides. CUDA ops when torch is a
# CUDA build, nvcc matches its CUDA version and a GPU is visible (built for the
# visible GPUs' architectures); the CPU otherwise, and the reason is printed.
# FORCE_CUDA=0/1 overrides; TORCH_CUDA_ARCH_LIST sets the architectures.
#
# Usage (inside any virtual environment that already has torch):
#   PYTHON=.venv/bin/python bash tools/setup/install_mmcv.sh
# GPU build on a machine without a GPU (e.g. to carry the wheel to one): the
# wheel is built and cached but not installed, since its ops could not run here
# (MMCV_INSTALL=1 installs it all the same):
#   FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="8.0;9.0" bash tools/setup/install_mmcv.sh
#
# Also: MMCV_SDIST=path/mmcv-2.1.0.tar.gz builds from that archive (offline;
# tools/setup/offline_setup.sh); MMCV_BUILD_DIR=dir builds there and keeps it,
# so a build that failed or was cut off resumes with the files already compiled.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

PYTHON=${PYTHON:-python}
MMCV_VERSION=${MMCV_VERSION:-2.1.0}
CACHE_DIR=${SHUFFLENET_DET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shufflenet_det}
MAX_JOBS=${MAX_JOBS:-$(nproc)}

say() { printf '[install_mmcv] %s\n' "$*"; }

if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
  say "torch is not importable by $PYTHON: install torch first (see README.md)." >&2
  exit 1
fi
# Absolute path of the interpreter (the build below runs in another directory).
PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)')

# OPS_DEVICE (cpu, cuda or error), OPS_ARCHS, OPS_NVCC and OPS_REASON.
eval "$("$PYTHON" "$HERE/detect_cuda.py")"
case "$OPS_DEVICE" in
  cpu) say "CPU ops only: $OPS_REASON. FORCE_CUDA=1 builds CUDA ops." ;;
  cuda) say "CUDA ops: $OPS_REASON." ;;
  *) say "$OPS_REASON." >&2; exit 1 ;;
esac

installed() {
  "$PYTHON" - "$MMCV_VERSION" <<'PY' 2>/dev/null
import sys, mmcv
from mmcv.ops import nms, RoIAlign  # noqa: F401  (fails when the ops were not built)
sys.exit(0 if mmcv.__version__ == sys.argv[1] else 1)
PY
}
if installed && "$PYTHON" "$HERE/detect_cuda.py" --check-installed >/dev/null; then
  say "mmcv $MMCV_VERSION with compiled $OPS_DEVICE ops is already installed."
  exit 0
fi

# Key of the cached wheel: everything the compiled ops depend on.
read -r TORCH_VERSION PY_TAG CXX_STD < <("$PYTHON" - <<'PY'
import inspect, re, sys
import torch
from torch.utils import cpp_extension
# The C++ standard torch's own extensions are built with (c++17 for torch<2.10).
m = re.search(r"cpp_flag_prefix \+ '(c\+\+\d+)'", inspect.getsource(cpp_extension))
print(torch.__version__.replace('+', '_'), f'py{sys.version_info[0]}{sys.version_info[1]}',
      m.group(1) if m else 'c++17')
PY
)
# The CPU key is unchanged from earlier versions of this script, so their
# cached wheels are used; a CUDA wheel also depends on nvcc and the archs.
if [ "$OPS_DEVICE" = cuda ]; then
  FORCE_CUDA=1
  export TORCH_CUDA_ARCH_LIST="$OPS_ARCHS"
  DEVICE="cuda${OPS_NVCC}_sm$(echo "$OPS_ARCHS" | tr -d '.' | tr -c 'A-Za-z0-9\n' '-')"
  # cpp_extension takes the toolkit to be two levels above nvcc; where nvcc is
  # a wrapper script (e.g. /usr/local/bin/nvcc) that is not where libcudart
  # and the headers are, so the real root comes from nvcc itself.
  if [ -z "${CUDA_HOME:-}" ]; then
    NVCC_HOME=$("$PYTHON" -c 'import logging; logging.disable(logging.WARNING)
from torch.utils.cpp_extension import CUDA_HOME; print(CUDA_HOME)')
    CUDA_HOME=$("$NVCC_HOME/bin/nvcc" -dryrun -c -x cu /dev/null -o /dev/null 2>&1 |
                sed -n 's/^#\$ TOP=//p' | head -1)
    CUDA_HOME=$(cd "${CUDA_HOME:-$NVCC_HOME}" && pwd -P)
  fi
  export CUDA_HOME
  PATCH_ARGS=(--cuda-home "$CUDA_HOME")
  # Installed by default only where the ops can run.
  GPUS=$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)
  MMCV_INSTALL=${MMCV_INSTALL:-$([ "$GPUS" -gt 0 ] && echo 1 || echo 0)}
else
  FORCE_CUDA=0
  DEVICE=cpu
  PATCH_ARGS=()
fi
MMCV_INSTALL=${MMCV_INSTALL:-1}
KEY="mmcv-${MMCV_VERSION}_torch-${TORCH_VERSION}_${PY_TAG}_${DEVICE}"
WHEEL_DIR="$CACHE_DIR/$KEY"

if ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
  say "Using the cached wheel in $WHEEL_DIR."
else
  say "No cached wheel for $KEY: building mmcv $MMCV_VERSION with ops ($CXX_STD)."
  if [ "$OPS_DEVICE" = cuda ]; then
    say "This compiles 78 C++ and 58 CUDA files for $OPS_ARCHS: expect well over 12 minutes on 2 cores (MAX_JOBS=$MAX_JOBS)."
  else
    say "This compiles ~100 C++ files: about 12 minutes on 2 cores (MAX_JOBS=$MAX_JOBS)."
  fi
  if [ -n "${MMCV_BUILD_DIR:-}" ]; then
    mkdir -p "$MMCV_BUILD_DIR"
    BUILD=$(cd "$MMCV_BUILD_DIR" && pwd)
  else
    BUILD=$(mktemp -d)
    trap 'rm -rf "$BUILD"' EXIT
  fi
  build_start=$(date +%s)
  # setup.py builds with torch's cpp_extension (setuptools, ninja) and no
  # build isolation, so that it sees this environment's torch.
  "$PYTHON" -m pip install -q setuptools wheel ninja packaging
  SRC="$BUILD/mmcv-$MMCV_VERSION"
  if [ ! -f "$SRC/setup.py" ]; then
    if [ -z "${MMCV_SDIST:-}" ]; then
      # pip prepares the archive's metadata by running its setup.py, which
      # imports pkg_resources: setuptools<70 in pip's isolated build
      # environment (where torch is absent, so no op is compiled). pip 26
      # reads build constraints apart (PIP_BUILD_CONSTRAINT), older pips
      # from PIP_CONSTRAINT.
      echo 'setuptools<70' > "$BUILD/sdist-constraint.txt"
      PIP_CONSTRAINT="$BUILD/sdist-constraint.txt" \
      PIP_BUILD_CONSTRAINT="$BUILD/sdist-constraint.txt" "$PYTHON" -m pip download \
          -q --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$BUILD"
      MMCV_SDIST="$BUILD/mmcv-$MMCV_VERSION.tar.gz"
    fi
    tar -xzf "$MMCV_SDIST" -C "$BUILD"
  else
    say "Resuming the build in $SRC (files compiled there are kept)."
  fi
  "$PYTHON" "$HERE/patch_mmcv.py" "$SRC" --cxx-std "$CXX_STD" "${PATCH_ARGS[@]}"
  (cd "$SRC" && MMCV_WITH_OPS=1 FORCE_CUDA="$FORCE_CUDA" MAX_JOBS="$MAX_JOBS" \
      "$PYTHON" -m pip wheel -q --no-build-isolation --no-deps -w "$BUILD/dist" .)
  say "Built in $(( $(date +%s) - build_start )) s: $(du -h "$BUILD"/dist/mmcv-*.whl | cut -f1) $(basename "$BUILD"/dist/mmcv-*.whl)."
  # Publish atomically: a build killed half-way never leaves a broken cache entry.
  mkdir -p "$CACHE_DIR"
  TMP_DIR=$(mktemp -d "$CACHE_DIR/.partial.XXXXXX")
  cp "$BUILD"/dist/mmcv-*.whl "$TMP_DIR"/
  rm -rf "$WHEEL_DIR"
  mv "$TMP_DIR" "$WHEEL_DIR"
  say "Cached the wheel in $WHEEL_DIR."
fi

if [ "$MMCV_INSTALL" != 1 ]; then
  say "Not installed: no GPU is visible here to run its CUDA ops (MMCV_INSTALL=1 installs it); the wheel is in $WHEEL_DIR."
  exit 0
fi

# Replace whatever mmcv is there (e.g. one without ops) by the built wheel, then
# let pip add mmcv's own requirements (opencv-python, mmengine, addict, yapf...).
# None of them is torch, so the torch of this environment stays as it is.
"$PYTHON" -m pip install -q --no-deps --force-reinstall "$WHEEL_DIR"/mmcv-*.whl
"$PYTHON" -m pip install -q "$WHEEL_DIR"/mmcv-*.whl 2>&1 | grep -v '^WARNING: Location' || true
"$PYTHON" -c 'import mmcv; from mmcv.ops import nms, RoIAlign, get_compiling_cuda_version as v
print("[install_mmcv] mmcv", mmcv.__version__, "with ops is ready (CUDA:", v() + ").")'
