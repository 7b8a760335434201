"""Which ops to build mmcv with: CUDA when this machine can build and run
them, the CPU otherwise. Used by tools/setup/install_mmcv.sh and
tools/setup/setup.sh.

    python tools/setup/detect_cuda.py            # shell assignments, for eval
    python tools/setup/detect_cuda.py --explain  # the one-line decision
    python tools/setup/detect_cuda.py --check-installed
        # the decision; exit 0 when the installed mmcv matches

CUDA ops are chosen when all of these hold (FORCE_CUDA=0/1 overrides):
torch is a CUDA build; nvcc is found where torch's cpp_extension looks for it
(CUDA_HOME, CUDA_PATH, nvcc on PATH, /usr/local/cuda); nvcc's major version
is torch's (cpp_extension refuses to build otherwise); and a GPU is visible.
A machine with nvcc but no GPU builds for the CPU unless FORCE_CUDA=1: a CUDA
build of mmcv takes several times as long as the CPU one.

Architectures: TORCH_CUDA_ARCH_LIST if set, else those of the visible GPUs,
else (FORCE_CUDA=1 without a GPU) the ones torch itself was built for.
"""
import logging
import os
import os.path as osp
import re
import shlex
import subprocess
import sys


def nvcc_version(cuda_home):
    """(path, 'major.minor') of nvcc under ``cuda_home``, or (None, None)."""
    if not cuda_home:
        return None, None
    nvcc = osp.join(cuda_home, 'bin', 'nvcc')
    if not os.access(nvcc, os.X_OK):
        return None, None
    try:
        out = subprocess.run([nvcc, '--version'], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return nvcc, None
    m = re.search(r'release (\d+\.\d+)', out)
    return nvcc, m.group(1) if m else None


def decide(env=os.environ):
    """dict(device='cpu'|'cuda', archs='8.0;9.0', nvcc='13.0', reason=...)."""
    import torch
    # cpp_extension logs a warning when it finds nvcc but no CUDA runtime.
    logging.getLogger('torch.utils.cpp_extension').setLevel(logging.ERROR)
    from torch.utils import cpp_extension

    force = env.get('FORCE_CUDA', '')
    torch_cuda = torch.version.cuda
    nvcc, nvcc_ver = nvcc_version(cpp_extension.CUDA_HOME)
    gpus = torch.cuda.device_count() if torch_cuda else 0
    found = (f'torch {torch.__version__}, '
             + (f'nvcc {nvcc_ver} at {nvcc}' if nvcc else 'no nvcc')
             + f', {gpus} GPU(s) visible')

    if force == '0':
        return dict(device='cpu', reason=f'FORCE_CUDA=0 ({found})')
    problem = None
    if not torch_cuda:
        problem = f'torch {torch.__version__} is a CPU-only build'
    elif not nvcc:
        problem = ('nvcc not found (set CUDA_HOME to the CUDA toolkit of '
                   f'torch\'s CUDA {torch_cuda})')
    elif not nvcc_ver or nvcc_ver.split('.')[0] != torch_cuda.split('.')[0]:
        problem = (f'nvcc {nvcc_ver} does not match torch\'s CUDA '
                   f'{torch_cuda} (major versions must agree)')
    if problem and force == '1':
        # Cannot be honoured: the build would fail half-way.
        return dict(device='error', reason=f'FORCE_CUDA=1 but {problem}')
    if not problem and not gpus and force != '1':
        problem = 'no GPU is visible to torch'
    if problem:
        return dict(device='cpu', reason=f'{problem} ({found})')

    archs = env.get('TORCH_CUDA_ARCH_LIST', '').strip()
    if not archs and gpus:
        caps = {torch.cuda.get_device_capability(i) for i in range(gpus)}
        archs = ';'.join(f'{a}.{b}' for a, b in sorted(caps))
    if not archs:
        archs = ';'.join(f'{a[3:-1]}.{a[-1]}' for a in
                         torch.cuda.get_arch_list() if a.startswith('sm_'))
    why = 'FORCE_CUDA=1' if force == '1' else 'CUDA toolchain found'
    return dict(device='cuda', archs=archs, nvcc=nvcc_ver,
                reason=f'{why} ({found}), architectures {archs}')


def installed_matches(decision):
    """True when the installed mmcv has compiled ops for the decided device."""
    try:
        from mmcv.ops import get_compiling_cuda_version, nms  # noqa: F401
    except Exception:  # noqa: BLE001  (no mmcv, or one without ops)
        return False
    has_cuda = get_compiling_cuda_version() != 'not available'
    return has_cuda == (decision['device'] == 'cuda')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    decision = decide()
    if '--explain' in argv or '--check-installed' in argv:
        print(f'{decision["device"].upper()} ops: {decision["reason"]}')
    if '--check-installed' in argv:
        return 0 if installed_matches(decision) else 1
    if '--explain' in argv:
        return 0
    for key in ('device', 'archs', 'nvcc', 'reason'):
        print(f'OPS_{key.upper()}={shlex.quote(str(decision.get(key, "")))}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
