"""tools/detect_cuda.py: when the set-up builds mmcv's ops with CUDA, for
which architectures, and the one line that says why (each machine
simulated); tools/install_mmcv.sh on this machine."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from cli_helpers import ROOT

spec = importlib.util.spec_from_file_location(
    'detect_cuda', osp.join(ROOT, 'tools', 'detect_cuda.py'))
detect_cuda = importlib.util.module_from_spec(spec)
spec.loader.exec_module(detect_cuda)


@pytest.fixture
def machine(monkeypatch):
    """Set what torch and the toolkit report: machine(torch_cuda, nvcc,
    gpus=[(major, minor), ...])."""

    def set_machine(torch_cuda='13.0', nvcc='13.0', gpus=()):
        monkeypatch.setattr(torch.version, 'cuda', torch_cuda)
        monkeypatch.setattr(
            detect_cuda, 'nvcc_version',
            lambda home: ('/opt/cuda/bin/nvcc', nvcc) if nvcc else
            (None, None))
        monkeypatch.setattr(torch.cuda, 'device_count', lambda: len(gpus))
        monkeypatch.setattr(torch.cuda, 'get_device_capability',
                            lambda i: gpus[i])
        monkeypatch.setattr(torch.cuda, 'get_arch_list',
                            lambda: ['sm_80', 'sm_90', 'compute_90'])

    return set_machine


def test_gpu_and_matching_nvcc_build_cuda_for_the_visible_gpus(machine):
    machine(gpus=[(9, 0), (8, 0), (9, 0)])
    d = detect_cuda.decide({})
    assert d['device'] == 'cuda' and d['archs'] == '8.0;9.0'
    assert d['nvcc'] == '13.0'
    assert 'CUDA toolchain found' in d['reason']


def test_nvcc_without_gpu_builds_for_the_cpu(machine):
    machine(gpus=[])
    d = detect_cuda.decide({})
    assert d['device'] == 'cpu'
    assert d['reason'].startswith('no GPU is visible to torch')


def test_force_cuda_overrides_both_ways(machine):
    machine(gpus=[])
    d = detect_cuda.decide({'FORCE_CUDA': '1'})
    # No GPU to read architectures from: torch's own list.
    assert d['device'] == 'cuda' and d['archs'] == '8.0;9.0'
    d = detect_cuda.decide({'FORCE_CUDA': '1', 'TORCH_CUDA_ARCH_LIST': '9.0'})
    assert d['archs'] == '9.0'
    machine(gpus=[(9, 0)])
    d = detect_cuda.decide({'FORCE_CUDA': '0'})
    assert d['device'] == 'cpu' and d['reason'].startswith('FORCE_CUDA=0')


@pytest.mark.parametrize('torch_cuda,nvcc,reason', [
    (None, '13.0', 'is a CPU-only build'),
    ('13.0', None, 'nvcc not found'),
    ('13.0', '12.4', 'nvcc 12.4 does not match torch\'s CUDA 13.0'),
])
def test_unusable_toolchain(machine, torch_cuda, nvcc, reason):
    machine(torch_cuda=torch_cuda, nvcc=nvcc, gpus=[(9, 0)])
    d = detect_cuda.decide({})
    assert d['device'] == 'cpu' and reason in d['reason']
    # FORCE_CUDA=1 cannot be honoured: said before a build fails half-way.
    d = detect_cuda.decide({'FORCE_CUDA': '1'})
    assert d['device'] == 'error' and reason in d['reason']


def test_installed_mmcv_matches_the_decision():
    has_cuda = torch.cuda.is_available()  # CI: CPU ops, as built here
    if not has_cuda:
        assert detect_cuda.installed_matches(dict(device='cpu'))
        assert not detect_cuda.installed_matches(dict(device='cuda'))


@pytest.mark.skipif(torch.cuda.is_available(), reason='a machine without '
                    'a GPU')
def test_install_mmcv_says_why_it_builds_cpu_ops():
    """Here mmcv is installed with CPU ops: the script says why in one line
    and does nothing else."""
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop('FORCE_CUDA', None)
    proc = subprocess.run(['bash', 'tools/install_mmcv.sh'], cwd=ROOT,
                          env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith('[install_mmcv] CPU ops only: ')
    assert lines[0].endswith('FORCE_CUDA=1 builds CUDA ops.')
    assert lines[1:] == [
        '[install_mmcv] mmcv 2.1.0 with compiled cpu ops is already '
        'installed.']
