"""The GPU path, checked on a CPU: the flags the patched mmcv setup.py gives
both compilers (nothing compiled), the wheelhouse's requirements against
setup.py's, what the offline set-up refuses, and tools/gpu_table7.sh in its
CPU form (--no-setup --device cpu --quick).

The set-up scripts (tools/setup/) run before the package is installed, so
they are run here as install_mmcv.sh runs them: as commands."""
import ast
import json
import os
import os.path as osp
import re
import subprocess
import sys
import tarfile
import time

import pytest
from cli_helpers import ROOT

from shufflenet_det.table7 import gpu

# Loaded by Python at start-up from PYTHONPATH: torch seen as installed in
# FAKE_TORCH_SITE, whose nvidia/*/include stand for a pip CUDA build's
# math headers.
SITECUSTOMIZE = """
import os, os.path as osp
import torch
torch.__file__ = osp.join(os.environ['FAKE_TORCH_SITE'], 'torch',
                          '__init__.py')
"""


def patch_mmcv(*args, fake_torch_site=None, **env):
    """Run tools/setup/patch_mmcv.py ``args`` with the variables ``env``."""
    env = dict(os.environ, **env)
    if fake_torch_site:
        (fake_torch_site / 'sitecustomize.py').write_text(SITECUSTOMIZE)
        env.update(PYTHONPATH=str(fake_torch_site),
                   FAKE_TORCH_SITE=str(fake_torch_site))
    return subprocess.run(
        [sys.executable, 'tools/setup/patch_mmcv.py', *map(str, args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def changes(proc):
    """The changes a patch_mmcv.py run reports."""
    assert proc.returncode == 0, proc.stderr
    return [ln[len('[patch_mmcv] '):] for ln in proc.stdout.splitlines()
            if ln.startswith('[patch_mmcv] ')]


def flags(src, **env):
    """``--print-flags``: what setup.py passes to the compilers under
    ``env``, as dict(kind=..., cxx=[...], ...)."""
    proc = patch_mmcv(src, '--print-flags', **env)
    assert proc.returncode == 0, proc.stderr
    out = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition(': ')
        if sep:
            try:
                out[key] = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                out[key] = value
    return out


@pytest.fixture
def pip_cuda_site(tmp_path):
    """A stand-in for the site-packages of a pip CUDA build of torch:
    nvidia/cu13/include with the math headers."""
    site = tmp_path / 'site'
    include = site / 'nvidia' / 'cu13' / 'include'
    include.mkdir(parents=True)
    (include / 'cusparse.h').write_text('')
    return site


@pytest.fixture(scope='module')
def mmcv_archive(tmp_path_factory):
    """mmcv 2.1.0's source archive, downloaded as install_mmcv.sh does."""
    d = tmp_path_factory.mktemp('mmcv_sdist')
    (d / 'constraint.txt').write_text('setuptools<70\n')
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', 'download', '-q', '--no-deps',
         '--no-binary', ':all:', 'mmcv==2.1.0', '-d', str(d)],
        env=dict(os.environ, PIP_CONSTRAINT=str(d / 'constraint.txt'),
                 PIP_BUILD_CONSTRAINT=str(d / 'constraint.txt')),
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return d / 'mmcv-2.1.0.tar.gz'


@pytest.fixture
def mmcv_src(mmcv_archive, tmp_path):
    """A fresh unpacked tree."""
    with tarfile.open(mmcv_archive) as tar:
        tar.extractall(tmp_path)
    return tmp_path / 'mmcv-2.1.0'


def test_patched_setup_gives_both_compilers_the_standard(mmcv_src, tmp_path,
                                                        pip_cuda_site):
    stock = (mmcv_src / 'setup.py').read_text()
    assert "['-std=c++17']" in stock and 'from pkg_resources' in stock
    extra = str(pip_cuda_site / 'nvidia' / 'cu13' / 'include')
    # A toolkit with nvcc only: the math headers come from torch's wheels.
    nvcc_only = tmp_path / 'cuda'
    (nvcc_only / 'bin').mkdir(parents=True)
    made = changes(patch_mmcv(mmcv_src, '--cxx-std', 'c++20', '--cuda-home',
                              nvcc_only, fake_torch_site=pip_cuda_site))
    assert len(made) == 3 and 'nvcc' in made[0]
    assert made[2] == f'include path += {extra}'

    # This venv's setuptools may have no pkg_resources: the shim is used.
    # CUDA_HOME: cpp_extension's CUDAExtension needs a toolkit root, which
    # a machine without nvcc has not.
    cuda = flags(mmcv_src, FORCE_CUDA='1', MMCV_WITH_OPS='1',
                 CUDA_HOME=str(nvcc_only))
    assert cuda['kind'] == 'CUDAExtension'
    assert cuda['cxx'] == ['-std=c++20'] and cuda['nvcc'] == ['-std=c++20']
    assert extra in cuda['include_dirs']
    assert ('MMCV_WITH_CUDA', None) in cuda['define_macros']

    cpu = flags(mmcv_src, FORCE_CUDA='0', MMCV_WITH_OPS='1',
                CUDA_HOME=str(nvcc_only))
    assert cpu['kind'] == 'CppExtension'
    assert cpu['cxx'] == ['-std=c++20'] and cpu['nvcc'] == []
    assert extra not in cpu['include_dirs']
    # The CUDA build adds mmcv's 58 .cu files (and cudabind.cpp).
    assert cuda['sources'] - cpu['sources'] == 59

    # Idempotent: a resumed build patches nothing twice.
    text = (mmcv_src / 'setup.py').read_text()
    assert changes(patch_mmcv(mmcv_src, '--cxx-std', 'c++20', '--cuda-home',
                              nvcc_only, fake_torch_site=pip_cuda_site)) == []
    assert (mmcv_src / 'setup.py').read_text() == text


def test_patch_names_the_file_when_it_does_not_apply(tmp_path):
    (tmp_path / 'setup.py').write_text('from setuptools import setup\n')
    proc = patch_mmcv(tmp_path, '--cxx-std', 'c++20')
    assert proc.returncode == 1
    assert str(tmp_path / 'setup.py') in proc.stderr
    assert 'mmcv 2.1.0' in proc.stderr


def test_cuda_math_headers_come_from_torch_only_when_missing(
        tmp_path, pip_cuda_site):
    """The include path grows only when the toolkit lacks the headers
    (a setup.py that only has the lines patched, nothing built)."""
    def fresh(name):
        src = tmp_path / name
        src.mkdir()
        (src / 'setup.py').write_text(
            "args = ['-std=c++17']\n"
            'from pkg_resources import DistributionNotFound, '
            'get_distribution, parse_version\n'
            "            include_dirs.append(os.path.abspath("
            "'./mmcv/ops/csrc/common/cuda'))\n")
        return src

    full = tmp_path / 'full'
    (full / 'include').mkdir(parents=True)
    (full / 'include' / 'cusparse.h').write_text('')
    made = changes(patch_mmcv(fresh('a'), '--cxx-std', 'c++20',
                              '--cuda-home', full,
                              fake_torch_site=pip_cuda_site))
    assert not any(c.startswith('include path') for c in made)
    made = changes(patch_mmcv(fresh('b'), '--cxx-std', 'c++20',
                              '--cuda-home', tmp_path / 'nvcc_only',
                              fake_torch_site=pip_cuda_site))
    assert made[-1] == ('include path += '
                        f'{pip_cuda_site / "nvidia" / "cu13" / "include"}')
    import torch
    if torch.version.cuda:  # a pip CUDA build of torch ships cusparse.h
        made = changes(patch_mmcv(fresh('c'), '--cxx-std', 'c++20',
                                  '--cuda-home', tmp_path / 'nvcc_only'))
        dirs = made[-1][len('include path += '):].split()
        assert any(osp.exists(osp.join(d, 'cusparse.h')) for d in dirs)


def _names(reqs):
    return {re.match(r'[A-Za-z0-9_.-]+', r).group(0).lower() for r in reqs}


def test_wheelhouse_has_every_requirement_of_setup_py():
    tree = ast.parse(open(osp.join(ROOT, 'setup.py')).read())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, 'id', '') == 'setup')
    kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords
          if k.arg in ('install_requires', 'extras_require')}
    script = open(osp.join(ROOT, 'tools', 'setup', 'wheelhouse.sh')).read()
    reqs = re.findall(r"'([^']+)'|(\b[a-z][\w-]*\b)", re.search(
        r'^REQS=\((.*?)^\)', script, re.S | re.M).group(1))
    reqs = [a or b for a, b in reqs]
    onnx = re.findall(r"REQS\+=\('([^']+)' '([^']+)'\)", script)[0]
    # torch/torchvision are the target's; mmcv travels as its source.
    assert _names(kw['install_requires']) - {'torch', 'torchvision',
                                              'mmcv'} <= _names(reqs)
    # The GPU machine gets ONNX Runtime (the GPU run's parity check), not
    # OpenVINO, a CPU runtime: the deploy extra's onnx pins, the same.
    deploy = [r for r in kw['extras_require']['deploy']
              if r.startswith('onnx')]
    assert len(deploy) == 2 and sorted(onnx) == sorted(deploy)


def _offline_setup(wheelhouse, **env):
    return subprocess.run(
        ['bash', 'tools/setup/offline_setup.sh', str(wheelhouse)], cwd=ROOT,
        env=dict(os.environ, PYTHON=sys.executable, **env),
        capture_output=True, text=True, timeout=120)


def test_offline_setup_refuses_what_it_cannot_use(tmp_path):
    proc = _offline_setup(tmp_path / 'absent')
    assert proc.returncode == 1
    assert 'no folder' in proc.stderr and 'wheelhouse.sh' in proc.stderr
    wh = tmp_path / 'wheelhouse'
    wh.mkdir()
    proc = _offline_setup(wh)
    assert proc.returncode == 1 and 'no mmcv-*.tar.gz' in proc.stderr
    # A torch older than the minimum (a stand-in module shadows the real one).
    (wh / 'mmcv-2.1.0.tar.gz').write_text('')
    (wh / 'mmengine-0.10.7-py3-none-any.whl').write_text('')
    fake = tmp_path / 'fake'
    for name, version in (('torch', '2.0.1'), ('torchvision', '0.15.2')):
        (fake / name).mkdir(parents=True)
        (fake / name / '__init__.py').write_text(f'__version__ = '
                                                 f'{version!r}\n')
    proc = _offline_setup(wh, PYTHONPATH=str(fake))
    assert proc.returncode == 1
    assert ('torch 2.0.1 is older than 2.1, the oldest this project '
            'supports') in proc.stderr
    assert not (tmp_path / '.venv').exists()


def test_gpu_command_in_its_cpu_form(tmp_path):
    """The whole GPU command on the CPU, set-up skipped: the 20 cells and
    the peer in both precisions, the training step, the parity check, and
    the three files; progress printed as it goes."""
    out = tmp_path / 'table7_gpu'
    start = time.time()
    proc = subprocess.run(
        ['bash', 'tools/gpu_table7.sh', '--no-setup', str(out), '--device',
         'cpu', '--quick', '--shape', '96', '128', '--batch-size', '1',
         '--parity-images', '1', '--work-dirs', str(tmp_path / 'none')],
        cwd=ROOT, env=dict(os.environ, PYTHON=sys.executable),
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f'gpu_table7.sh --device cpu --quick: {time.time() - start:.0f} s')
    result = json.loads((out / 'table7.json').read_text())
    assert result['complete'] is True
    rows = result['rows']
    assert len(rows) == 40 and all(r['images_per_s'] > 0 for r in rows)
    assert [r['precision'] for r in rows] == ['fp32'] * 20 + ['fp16'] * 20
    assert [p['precision'] for p in result['peer']] == ['fp32', 'fp16']
    assert {p['name']: p['status'] for p in result['phases']} == {
        name: 'ok' for name in (
            ['pre-flight'] + [f'{p} {lv}' for p in ('fp32', 'fp16') for lv in
                              ('40M', '140M', '300M', '500M', 'peer')]
            + ['training step', 'parity'])}
    checks = result['checks']
    assert checks['train_step']['ok'] and checks['train_step']['params_moved']
    # CPU against CPU: every detection matches (a plumbing check; what the
    # figure counts is test_parity_counts_what_the_device_changed's).
    assert checks['parity']['matched_fraction'] == 1.0
    assert sum(i['cpu'] for i in checks['parity']['images']) > 0
    md = (out / 'table7.md').read_text()
    assert md.count('| ShuffleNet v2* | ') == 2 and 'Peer (fp16)' in md
    assert 'Partial' not in md
    assert (out / 'table7.png').stat().st_size > 10000
    assert '[gpu_table7 ' in proc.stdout and 'fp16 500M: ok' in proc.stdout


def _perturbed(samples, image, shift=(), relabel=(), rescore=(), drop=()):
    """``samples`` (test_step's output) with the detections of one image
    changed, each argument a list of ranks (0: the highest score) or, for
    ``rescore``, of (rank, score change): boxes moved 1000 px to the right,
    labels no class has, scores changed, detections dropped."""
    import torch
    from mmengine.structures import InstanceData
    out = []
    for i, sample in enumerate(samples):
        sample = sample.clone()
        if i == image:
            det = sample.pred_instances
            rank = torch.argsort(det.scores, descending=True)
            bboxes, labels = det.bboxes.clone(), det.labels.clone()
            scores = det.scores.clone()
            for r in shift:
                bboxes[rank[r]] += torch.tensor([1000., 0., 1000., 0.])
            for r in relabel:
                labels[rank[r]] = 1000
            for r, delta in rescore:
                scores[rank[r]] += delta
            keep = torch.ones(len(scores), dtype=torch.bool)
            keep[rank[list(drop)]] = False
            sample.pred_instances = InstanceData(
                bboxes=bboxes[keep], labels=labels[keep], scores=scores[keep])
        out.append(sample)
    return out


@pytest.mark.parametrize('case', ['four_changed', 'one_image_relabelled'])
def test_parity_counts_what_the_device_changed(tmp_path, monkeypatch, case):
    """The parity figure, with a device whose detections differ from the
    CPU's in known ways: the "device" model is the CPU model with its
    output changed after test_step. Image 0 loses its top detection to a
    moved box, its 2nd to a label no class has and its 3rd to a score 0.02
    off (over the 0.01 tolerance); its 4th is 0.004 off (still a match)
    and its last is dropped. The other detections are the CPU's own, and
    no two kept boxes of one class overlap by IoU 0.9 (the head's NMS is at
    0.5), so each matches its twin only: the counts below follow."""
    import copy

    changes = dict(shift=[0], relabel=[1], rescore=[(2, 0.02), (3, 0.004)],
                   drop=[-1])
    if case == 'one_image_relabelled':
        changes = dict(relabel=list(range(100)))  # image 0: none matches

    def deepcopy(model):  # parity()'s on-device copy of the model
        twin = copy.deepcopy(model)
        test_step = twin.test_step
        twin.test_step = lambda batch: _perturbed(test_step(batch), 0,
                                                  **changes)
        return twin

    monkeypatch.setattr(gpu, 'copy', type(
        'copy', (), dict(deepcopy=staticmethod(deepcopy),
                         copy=staticmethod(copy.copy))))
    settings = gpu.GPUSettings(out_dir=str(tmp_path), device='cpu',
                               shape=(96, 128), parity_images=2)
    results = gpu.Results(settings, env={})
    if case == 'four_changed':
        gpu.parity(settings, results)
    else:
        with pytest.raises(RuntimeError, match='100/200 detections match'):
            gpu.parity(settings, results)
    check = results.checks['parity']
    # score_thr 0: each image has its max_per_img = 100 detections.
    if case == 'four_changed':
        assert [{k: i[k] for k in ('cpu', 'device', 'matched')}
                for i in check['images']] == [
            dict(cpu=100, device=99, matched=96),
            dict(cpu=100, device=100, matched=100)]
        assert check['images'][0]['max_score_diff'] == pytest.approx(
            0.004, abs=1e-6)
        assert check['images'][1]['max_score_diff'] == 0.0
        assert check['matched_fraction'] == 196 / 200
        assert check['ok'] is True
        assert '196/200 detections match' in check['summary']
    else:
        assert [i['matched'] for i in check['images']] == [0, 100]
        assert check['matched_fraction'] == 100 / 200
        assert check['ok'] is False
        assert check['summary'].endswith('FAILED.')


def test_a_run_cut_off_leaves_the_levels_already_measured(tmp_path,
                                                          monkeypatch):
    """The JSON and the table are on disk after each level; a level that
    fails is recorded, the next one still runs, and the exit status says
    so."""
    out = tmp_path / 'out'
    seen = []

    def measure(timing, precision):
        (level,) = timing.levels
        if seen:  # what a run cut off here would have left
            on_disk = json.loads((out / 'table7.json').read_text())
            seen.append((len(on_disk['rows']), on_disk['complete']))
        else:
            seen.append(None)
        if level == '140M':
            raise RuntimeError('CUDA out of memory')
        return [dict(family=f, level=level, config=f'lighthead_{f}',
                     precision=precision, images_per_s=10.0, iqr_s=0.0,
                     noisy=False, peak_mem_mb=1.0, mmap=None,
                     paper_mmap=20.0, paper_images_per_s=100, mflops=40)
                for f in timing.families]

    monkeypatch.setattr(gpu, 'measure', measure)
    status = gpu.run(gpu.GPUSettings(
        out_dir=str(out), device='cpu', precisions=['fp32'],
        cells=['shufflenetv2_40m', 'xception_40m', 'shufflenetv2_140m',
               'shufflenetv2_300m'], peer=False, checks=False))
    assert status == 1
    assert seen == [None, (2, False), (2, False)]
    result = json.loads((out / 'table7.json').read_text())
    assert [(r['family'], r['level']) for r in result['rows']] == [
        ('xception', '40M'), ('shufflenetv2', '40M'),
        ('shufflenetv2', '300M')]
    failed = [p for p in result['phases'] if p['status'] == 'failed']
    assert [(p['name'], p['error']) for p in failed] == [
        ('fp32 140M', 'RuntimeError: CUDA out of memory')]
    md = (out / 'table7.md').read_text()
    # Measured cells, '-' where none was, and the failure named.
    assert '| Xception | 10.0 (100) | - | - |' in md
    assert '| ShuffleNet v2 | 10.0 (100) | - | 10.0 (100) |' in md
    assert 'Phase fp32 140M failed: RuntimeError: CUDA out of memory' in md
