"""Can the tools run on the device asked for? Checked before any work starts.

mmdet's R-CNN post-processing calls mmcv's compiled ops (NMS, RoIAlign). An
mmcv built for the CPU only has no CUDA kernels for them, and the first
detection on a GPU then fails deep inside a run with a message from mmcv's
C++ dispatcher. :func:`check_device` says so, with the fix, in one line.
"""
import torch

FIX_BUILD = ('rebuild them with CUDA kernels: FORCE_CUDA=1 make setup '
             '(or FORCE_CUDA=1 bash tools/setup/install_mmcv.sh in your own '
             'environment)')


def runner_device():
    """The device mmengine's Runner trains and tests on."""
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def mmcv_cuda_version():
    """The CUDA version mmcv's ops were compiled with, or None when they
    were built for the CPU only."""
    from mmcv.ops import get_compiling_cuda_version
    version = get_compiling_cuda_version()
    return None if version == 'not available' else version


def cuda_problem(device, cpu_hint='use --device cpu'):
    """Why ``device`` cannot run the project's detectors, or None.
    ``cpu_hint``: how the tool runs on the CPU instead."""
    if torch.device(device).type != 'cuda':
        return None
    if not torch.cuda.is_available():
        why = (f'torch {torch.__version__} is a CPU-only build'
               if torch.version.cuda is None else
               f'no GPU is visible to torch {torch.__version__}')
        return f'--device cuda: CUDA is not available ({why}); {cpu_hint}'
    if mmcv_cuda_version() is None:
        return ('mmcv\'s ops (NMS, RoIAlign) were built for the CPU only, so '
                f'they cannot run on the GPU: {FIX_BUILD}; or {cpu_hint}')
    # Built with CUDA, but perhaps not for this GPU's architecture: one tiny
    # NMS says so now rather than after the model is built.
    from mmcv.ops import nms
    try:
        boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]],
                             device=device)
        nms(boxes, torch.tensor([0.9, 0.8], device=device), 0.5)
    except RuntimeError as e:
        name = torch.cuda.get_device_name(device)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return (f'mmcv\'s CUDA ops do not run on {name} ({first}): '
                f'{FIX_BUILD}; or {cpu_hint}')
    return None


def check_device(device=None):
    """Exit with status 1 and one line naming the fix when ``device`` (by
    default the Runner's: train/test) cannot run detection; return the
    device."""
    hint = 'use --device cpu'
    if device is None:
        device = runner_device()
        hint = 'run on the CPU with CUDA_VISIBLE_DEVICES=""'
    problem = cuda_problem(device, hint)
    if problem:
        raise SystemExit(f'error: {problem}')
    return device
