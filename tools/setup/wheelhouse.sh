#!/usr/bin/env bash
# Prepare, on a machine with network, a folder with everything this project
# needs beyond torch and torchvision, for another machine that has torch but
# no network (tools/setup/offline_setup.sh installs from it; docs/gpu.md).
#
#   bash tools/setup/wheelhouse.sh OUT_DIR [--python 3.12] [--glibc 2.28]
#                            [--exclude "NAME ..."] [--no-onnx]
#
#   --python    the target's Python version (default: this python3's)
#   --glibc     the target's glibc (default 2.28, as torch's own wheels):
#               manylinux wheels up to that version are taken (x86-64)
#   --exclude   packages the target already has, left out (e.g. the lent GPU
#               machine's "numpy scipy matplotlib opencv-python pillow", to
#               keep the folder small); torch, torchvision and triton are
#               never included
#   --no-onnx   leave out onnx and onnxruntime (ONNX export and its backend)
#
# OUT_DIR gets: the wheels (binary for the target's Python, resolved with
# their dependencies), mmcv's source archive (PyPI has no mmcv 2.1.0 wheel
# for recent torch; offline_setup.sh builds its ops there, for the GPU it
# finds) and manifest.txt (target, packages, sizes).
set -euo pipefail

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
[ $# -ge 1 ] || usage 2
case "$1" in -h|--help) usage ;; esac
OUT=$1; shift
PYTHON=${PYTHON:-python3}
PY_VERSION=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
GLIBC=2.28
EXCLUDE=""
ONNX=1
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PY_VERSION=$2; shift 2 ;;
    --glibc) GLIBC=$2; shift 2 ;;
    --exclude) EXCLUDE="$EXCLUDE $2"; shift 2 ;;
    --no-onnx) ONNX=0; shift ;;
    -h|--help) usage ;;
    *) echo "wheelhouse.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
MMCV_VERSION=${MMCV_VERSION:-2.1.0}
say() { printf '[wheelhouse] %s\n' "$*"; }

# The project's requirements beyond torch/torchvision (setup.py's
# install_requires; tests/tools/test_gpu_setup.py checks the two agree),
# mmcv's own runtime requirements (its wheel is built on the target), and
# what building mmcv and installing this project there need.
REQS=(
  'mmengine>=0.10,<1' 'mmdet>=3.3.0,<3.4.0' pycocotools
  addict packaging Pillow pyyaml yapf
  setuptools wheel ninja
)
if [ "$ONNX" = 1 ]; then
  # The pins of setup.py's "deploy" extra for ONNX (OpenVINO, a CPU runtime, stays out).
  REQS+=('onnx==1.23.2' 'onnxruntime==1.31.1')
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# One resolution for the target (pip's report, no install), then each wheel
# it chose downloaded alone, leaving out what the target already has.
# pip takes --platform tags literally: every manylinux tag the target's
# glibc accepts is listed (manylinux2014 = 2_17, 2010 = 2_12, 1 = 2_5).
TARGET=(--python-version "$PY_VERSION" --implementation cp --only-binary :all:)
for ((minor = ${GLIBC#2.}; minor >= 5; minor--)); do
  TARGET+=(--platform "manylinux_2_${minor}_x86_64")
done
TARGET+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64
         --platform manylinux1_x86_64)
say "Resolving ${REQS[*]} for CPython $PY_VERSION (glibc $GLIBC, x86-64)."
"$PYTHON" -m pip install -q --dry-run --ignore-installed --target "$TMP/t" \
  --report "$TMP/report.json" "${TARGET[@]}" "${REQS[@]}"
"$PYTHON" - "$TMP/report.json" "$EXCLUDE" > "$TMP/pins.txt" <<'PY'
import json, re, sys
norm = lambda n: re.sub(r'[-_.]+', '-', n).lower()
skip = {norm(n) for n in sys.argv[2].split()} | {'torch', 'torchvision',
                                                 'triton'}
for item in json.load(open(sys.argv[1]))['install']:
    meta = item['metadata']
    if norm(meta['name']) not in skip and not norm(meta['name']).startswith(
            'nvidia-'):
        print(f"{meta['name']}=={meta['version']}")
PY
say "Downloading $(wc -l < "$TMP/pins.txt") wheels into $OUT."
"$PYTHON" -m pip download -q --no-deps "${TARGET[@]}" -d "$OUT" \
  -r "$TMP/pins.txt"

# mmcv's source archive. pip prepares its metadata by running its setup.py,
# which imports pkg_resources: setuptools < 70 in pip's isolated build
# environment (torch is absent there, so no op is compiled). pip 26 reads
# build constraints apart (PIP_BUILD_CONSTRAINT), older pips from
# PIP_CONSTRAINT.
echo 'setuptools<70' > "$TMP/sdist-constraint.txt"
PIP_CONSTRAINT="$TMP/sdist-constraint.txt" \
PIP_BUILD_CONSTRAINT="$TMP/sdist-constraint.txt" "$PYTHON" -m pip download -q \
  --no-deps --no-binary :all: "mmcv==$MMCV_VERSION" -d "$OUT"

{
  echo "# tools/setup/wheelhouse.sh: CPython $PY_VERSION, glibc $GLIBC x86-64, $(date -u +%F)"
  echo "# excluded (the target has them): torch torchvision triton nvidia-*$EXCLUDE"
  cat "$TMP/pins.txt"
  echo "mmcv==$MMCV_VERSION (source)"
} > "$OUT/manifest.txt"
say "Done: $(find "$OUT" -maxdepth 1 -name '*.whl' | wc -l) wheels + mmcv-$MMCV_VERSION.tar.gz, $(du -sh "$OUT" | cut -f1) in $OUT."
say "On the target: bash tools/setup/offline_setup.sh $OUT"
