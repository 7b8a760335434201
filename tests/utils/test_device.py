"""The CUDA pre-flight check of the tools, each failing condition simulated
(CI has no GPU): CUDA unavailable, mmcv's ops built for the CPU only, mmcv's
CUDA ops not running on the GPU. Each ends in exit status 1 and one line
naming the fix, before any work starts."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from shufflenet_det.utils import device as device_mod
from shufflenet_det.utils.device import check_device, cuda_problem

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'lighthead_v2star.py')

# Loaded by Python at start-up from PYTHONPATH: the gpu_but_cpu_mmcv
# fixture's machine, in a tool's own process.
GPU_BUT_CPU_MMCV = """
from shufflenet_det.utils import device
import torch
torch.cuda.is_available = lambda: True
device.mmcv_cuda_version = lambda: None
"""


@pytest.fixture
def gpu_but_cpu_mmcv(monkeypatch):
    """torch sees a GPU; mmcv's ops were built for the CPU only."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(device_mod, 'mmcv_cuda_version', lambda: None)


def test_cpu_is_always_fine():
    assert cuda_problem('cpu') is None
    assert check_device('cpu') == 'cpu'


def test_cuda_unavailable(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    msg = cuda_problem('cuda')
    assert 'CUDA is not available' in msg and msg.endswith('--device cpu')
    # The Runner's device is then the CPU: train/test go on.
    assert check_device() == 'cpu'


def test_cpu_only_mmcv_on_a_gpu(gpu_but_cpu_mmcv):
    with pytest.raises(SystemExit) as e:
        check_device('cuda')
    msg = str(e.value.code)
    assert msg.startswith('error: mmcv\'s ops (NMS, RoIAlign) were built for '
                          'the CPU only')
    assert 'FORCE_CUDA=1 make setup' in msg and '--device cpu' in msg
    assert '\n' not in msg
    with pytest.raises(SystemExit):  # the Runner's device is the GPU
        check_device()


def test_mmcv_cuda_ops_that_do_not_run(monkeypatch):
    """Built with CUDA, but the probe NMS fails (e.g. no kernel for this
    GPU's architecture)."""
    import mmcv.ops

    def nms(*args, **kwargs):
        raise RuntimeError('CUDA error: no kernel image is available for '
                           'execution on the device\nmore details')

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'get_device_name',
                        lambda *a: 'NVIDIA H100')
    monkeypatch.setattr(device_mod, 'mmcv_cuda_version', lambda: '13.0')
    monkeypatch.setattr(mmcv.ops, 'nms', nms)
    monkeypatch.setattr(torch, 'tensor', lambda *a, **k: None)
    msg = cuda_problem('cuda')
    assert msg.startswith('mmcv\'s CUDA ops do not run on NVIDIA H100 (CUDA '
                          'error: no kernel image is available')
    assert 'FORCE_CUDA=1 make setup' in msg and '\n' not in msg


def test_mmcv_version_of_this_build():
    """This machine's mmcv: CPU ops unless a GPU made setup build CUDA ones."""
    version = device_mod.mmcv_cuda_version()
    if not torch.cuda.is_available():
        assert version is None


@pytest.mark.parametrize('tool,args', [
    ('tools/analysis/benchmark.py', [CONFIG, '--device', 'cuda']),
    ('tools/table7.py', ['--device', 'cuda', '--quick']),
    ('tools/train.py', [CONFIG]),
    ('tools/test.py', [CONFIG, 'missing.pth']),
])
def test_tools_stop_before_work_with_cpu_only_mmcv(tool, args, tmp_path):
    """Each tool in its own process, on a machine where torch sees a GPU
    and mmcv's ops were built for the CPU only."""
    (tmp_path / 'sitecustomize.py').write_text(GPU_BUT_CPU_MMCV)
    work_dir = tmp_path / 'work_dir'
    if tool in ('tools/train.py', 'tools/test.py'):
        args = args + ['--work-dir', str(work_dir)]
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run([sys.executable, tool, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    msg = lines[0]
    assert msg.startswith('error: mmcv\'s ops (NMS, RoIAlign) were built '
                          'for the CPU only')
    assert 'FORCE_CUDA=1 make setup' in msg
    # The CPU way out: the option where the tool has one, else hiding the GPU.
    assert msg.endswith('--device cpu' if '--device' in args else
                        'run on the CPU with CUDA_VISIBLE_DEVICES=""')
    # Nothing else ran: no progress printed, no work_dir (not even for an
    # error log) made.
    assert proc.stdout == ''
    assert not work_dir.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine '
                    'without CUDA')
@pytest.mark.parametrize('tool,args', [
    ('tools/analysis/benchmark.py', [CONFIG, '--device', 'cuda']),
    ('tools/table7.py', ['--device', 'cuda']),
])
def test_cuda_on_a_machine_without_it_one_line(tool, args):
    proc = subprocess.run([sys.executable, tool, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        'error: --device cuda: CUDA is not available ('
        + ('no GPU is visible to torch ' if torch.version.cuda else
           'torch ') + torch.__version__
        + (')' if torch.version.cuda else ' is a CPU-only build)')
        + '; use --device cpu']
    assert proc.stdout == ''
