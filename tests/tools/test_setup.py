"""tools/setup/detect_cuda.py: when the set-up builds mmcv's ops with CUDA,
for which architectures, and the one line that says why (each machine
simulated in the script's own process by a sitecustomize module);
tools/setup/install_mmcv.sh on this machine.

The set-up scripts run before the package is installed, so they are run
here as the set-up runs them: as commands."""
import json
import os
import shlex
import subprocess
import sys

import pytest
import torch
from cli_helpers import ROOT

# Loaded by Python at start-up from PYTHONPATH: makes torch report the
# simulated machine (FAKE_MACHINE, JSON) before detect_cuda.py runs.
SITECUSTOMIZE = """
import json, os
machine = json.loads(os.environ['FAKE_MACHINE'])
import torch
from torch.utils import cpp_extension
gpus = [tuple(g) for g in machine['gpus']]
torch.version.cuda = machine['torch_cuda']
cpp_extension.CUDA_HOME = machine['cuda_home']
torch.cuda.device_count = lambda: len(gpus)
torch.cuda.get_device_capability = lambda i: gpus[i]
torch.cuda.get_arch_list = lambda: ['sm_80', 'sm_90', 'compute_90']
"""


@pytest.fixture
def machine(tmp_path):
    """decide = machine(torch_cuda, nvcc, gpus=[(major, minor), ...]):
    decide(env) runs detect_cuda.py on that machine with the variables
    ``env`` and returns its decision, dict(device=, archs=, nvcc=,
    reason=)."""
    (tmp_path / 'sitecustomize.py').write_text(SITECUSTOMIZE)

    def set_machine(torch_cuda='13.0', nvcc='13.0', gpus=()):
        cuda_home = None
        if nvcc:  # a toolkit whose nvcc reports this release
            cuda_home = tmp_path / f'cuda-{nvcc}'
            (cuda_home / 'bin').mkdir(parents=True, exist_ok=True)
            fake = cuda_home / 'bin' / 'nvcc'
            fake.write_text('#!/bin/sh\necho "Cuda compilation tools, '
                            f'release {nvcc}, V{nvcc}.88"\n')
            fake.chmod(0o755)
        spec = dict(torch_cuda=torch_cuda, gpus=list(gpus),
                    cuda_home=str(cuda_home) if cuda_home else None)

        def decide(env):
            proc = run_detect_cuda(tmp_path, spec, env)
            assert proc.returncode == 0, proc.stderr
            decision = {}
            for line in proc.stdout.strip().splitlines():
                key, _, value = line.partition('=')
                decision[key[len('OPS_'):].lower()] = shlex.split(value)[0] \
                    if value else ''
            return decision

        decide.spec = spec
        return decide

    return set_machine


def run_detect_cuda(site, spec, env, *args):
    """detect_cuda.py ``args`` on the machine ``spec``, with the variables
    ``env`` (and no FORCE_CUDA or TORCH_CUDA_ARCH_LIST of the caller's)."""
    env = dict({k: v for k, v in os.environ.items()
                if k not in ('FORCE_CUDA', 'TORCH_CUDA_ARCH_LIST')},
               PYTHONPATH=str(site), FAKE_MACHINE=json.dumps(spec), **env)
    return subprocess.run(
        [sys.executable, 'tools/setup/detect_cuda.py', *args], cwd=ROOT,
        env=env, capture_output=True, text=True, timeout=300)


def test_gpu_and_matching_nvcc_build_cuda_for_the_visible_gpus(machine):
    decide = machine(gpus=[(9, 0), (8, 0), (9, 0)])
    d = decide({})
    assert d['device'] == 'cuda' and d['archs'] == '8.0;9.0'
    assert d['nvcc'] == '13.0'
    assert 'CUDA toolchain found' in d['reason']


def test_nvcc_without_gpu_builds_for_the_cpu(machine):
    d = machine(gpus=[])({})
    assert d['device'] == 'cpu'
    assert d['reason'].startswith('no GPU is visible to torch')


def test_force_cuda_overrides_both_ways(machine):
    decide = machine(gpus=[])
    d = decide({'FORCE_CUDA': '1'})
    # No GPU to read architectures from: torch's own list.
    assert d['device'] == 'cuda' and d['archs'] == '8.0;9.0'
    d = decide({'FORCE_CUDA': '1', 'TORCH_CUDA_ARCH_LIST': '9.0'})
    assert d['archs'] == '9.0'
    d = machine(gpus=[(9, 0)])({'FORCE_CUDA': '0'})
    assert d['device'] == 'cpu' and d['reason'].startswith('FORCE_CUDA=0')


@pytest.mark.parametrize('torch_cuda,nvcc,reason', [
    (None, '13.0', 'is a CPU-only build'),
    ('13.0', None, 'nvcc not found'),
    ('13.0', '12.4', 'nvcc 12.4 does not match torch\'s CUDA 13.0'),
])
def test_unusable_toolchain(machine, torch_cuda, nvcc, reason):
    decide = machine(torch_cuda=torch_cuda, nvcc=nvcc, gpus=[(9, 0)])
    d = decide({})
    assert d['device'] == 'cpu' and reason in d['reason']
    # FORCE_CUDA=1 cannot be honoured: said before a build fails half-way.
    d = decide({'FORCE_CUDA': '1'})
    assert d['device'] == 'error' and reason in d['reason']


@pytest.mark.skipif(torch.cuda.is_available(), reason='a machine without '
                    'a GPU')
def test_installed_mmcv_matches_the_decision(machine, tmp_path):
    """--check-installed: exit 0 when the installed mmcv's ops are those
    decided, 1 otherwise (CI: CPU ops, as built here)."""
    from mmcv.ops import get_compiling_cuda_version
    cuda_ops = get_compiling_cuda_version() != 'not available'
    cpu = machine(torch_cuda=None, gpus=[]).spec
    proc = run_detect_cuda(tmp_path, cpu, {}, '--check-installed')
    assert proc.returncode == int(cuda_ops), proc.stderr
    assert proc.stdout.startswith('CPU ops: ')
    cuda = machine(gpus=[(9, 0)]).spec
    proc = run_detect_cuda(tmp_path, cuda, {}, '--check-installed')
    assert proc.returncode == int(not cuda_ops), proc.stderr
    assert proc.stdout.startswith('CUDA ops: CUDA toolchain found')


@pytest.mark.skipif(torch.cuda.is_available(), reason='a machine without '
                    'a GPU')
def test_install_mmcv_says_why_it_builds_cpu_ops():
    """Here mmcv is installed with CPU ops: the script says why in one line
    and does nothing else."""
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop('FORCE_CUDA', None)
    proc = subprocess.run(['bash', 'tools/setup/install_mmcv.sh'], cwd=ROOT,
                          env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith('[install_mmcv] CPU ops only: ')
    assert lines[0].endswith('FORCE_CUDA=1 builds CUDA ops.')
    assert lines[1:] == [
        '[install_mmcv] mmcv 2.1.0 with compiled cpu ops is already '
        'installed.']
