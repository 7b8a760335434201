"""A run killed (SIGKILL) or pre-empted (SIGTERM) and resumed ends with the
weights of an uninterrupted run, bit for bit (CPU, deterministic), with a
persistent data-loader worker and a random flip in the pipeline: in one
process (epoch-based, killed after an epoch's checkpoint; pre-empted inside
an epoch), in two processes (gloo; one rank signalled, both stop after the
same iteration), and for iteration-based pretraining (tools/pretrain.py).
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from cli_helpers import ROOT, run_tool, tiny_config

PREEMPTED = 124


def epoch_config(tmp_path, data_root, max_epochs=2):
    """The tiny config, epoch-based (mmengine's loop: tools/train.py swaps
    in the resumable one), 1 persistent worker, a random flip."""
    base = tiny_config(tmp_path, data_root)
    text = f'''
_base_ = [{base!r}]
pipeline = [
    dict(type='LoadImageFromFileOrSkip'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(160, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    num_workers=1, persistent_workers=True,
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    dataset=dict(pipeline=pipeline))
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop',
                 max_epochs={max_epochs}, val_interval=1000)
default_hooks = dict(checkpoint=dict(by_epoch=True, interval=1))
log_processor = dict(by_epoch=True)
'''
    path = tmp_path / f'epochs{max_epochs}.py'
    path.write_text(text)
    return str(path)


def _weights(path):
    return torch.load(path, map_location='cpu',
                      weights_only=False)['state_dict']


def assert_same_weights(a, b):
    a, b = _weights(a), _weights(b)
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f'{len(differ)} of {len(a)} tensors differ: {differ[:5]}'


class Run:
    """A training command in the background, its output collected line by
    line (unbuffered) so that a test can act when a line appears."""

    def __init__(self, args, **env):
        self.proc = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=dict(os.environ, PYTHONUNBUFFERED='1', **env),
            start_new_session=True)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, pattern, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(re.search(pattern, ln) for ln in self.lines):
                return
            assert self.proc.poll() is None, \
                f'ended before {pattern!r}:\n' + self.output[-3000:]
            time.sleep(0.02)
        raise AssertionError(f'no {pattern!r} in {timeout} s')

    def finish(self, timeout=300):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise
        self._reader.join(timeout=10)
        return rc

    @property
    def output(self):
        return ''.join(self.lines)


def train_cmd(config, work, *extra):
    return [sys.executable, 'tools/train.py', config, '--work-dir',
            str(work), '--skip-data-check', *extra]


@pytest.fixture(scope='module')
def reference(tmp_path_factory, shapes_root):
    """The uninterrupted single-process run: 2 epochs of 4 iterations."""
    tmp = tmp_path_factory.mktemp('ref')
    config = epoch_config(tmp, shapes_root)
    proc = run_tool(*train_cmd(config, tmp / 'work')[1:])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return config, tmp / 'work' / 'epoch_2.pth'


def test_sigkill_after_epoch_checkpoint_then_resume(tmp_path, reference):
    config, ref = reference
    work = tmp_path / 'killed'
    run = Run(train_cmd(config, work))
    deadline = time.time() + 300
    while not (work / 'epoch_1.pth').exists():
        assert run.proc.poll() is None, run.output[-3000:]
        assert time.time() < deadline
        time.sleep(0.02)
    os.killpg(run.proc.pid, signal.SIGKILL)  # the worker too, as a node loss
    run.finish()
    assert not (work / 'epoch_2.pth').exists()

    proc = run_tool(*train_cmd(config, work, '--resume')[1:])
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert 'resumed epoch: 1, iter: 4' in proc.stdout + proc.stderr
    assert_same_weights(ref, work / 'epoch_2.pth')


def test_sigterm_inside_an_epoch_then_resume(tmp_path, reference):
    config, ref = reference
    work = tmp_path / 'preempted'
    run = Run(train_cmd(config, work))
    # Iteration 5 (epoch 2, batch 1 of 4) is logged: the 6th is running.
    run.wait_for(r'Epoch\(train\)\s+\[2\]\[1/4\]')
    os.kill(run.proc.pid, signal.SIGTERM)
    assert run.finish() == PREEMPTED, run.output[-3000:]
    saved = sorted(p.name for p in work.glob('iter_*.pth'))
    assert len(saved) == 1, saved
    stopped = int(re.fullmatch(r'iter_(\d+)\.pth', saved[0]).group(1))
    assert 4 < stopped < 8, saved  # inside epoch 2
    assert f'Pre-empted (SIGTERM): stopped after iteration {stopped}' in \
        run.output
    assert (work / 'last_checkpoint').read_text().endswith(saved[0])

    proc = run_tool(*train_cmd(config, work, '--resume')[1:])
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert f'its first {stopped - 4} of 4 batches were trained' in log
    assert_same_weights(ref, work / 'epoch_2.pth')


def _rank_pids(root_pid):
    """{RANK: pid} of the training processes under ``root_pid``."""
    found, todo = {}, [root_pid]
    while todo:
        pid = todo.pop()
        try:
            with open(f'/proc/{pid}/environ', 'rb') as f:
                env = dict(kv.split(b'=', 1) for kv in f.read().split(b'\0')
                           if b'=' in kv)
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                cmd = f.read()
            children = []
            for task in os.listdir(f'/proc/{pid}/task'):
                with open(f'/proc/{pid}/task/{task}/children') as f:
                    children += [int(c) for c in f.read().split()]
        except OSError:
            continue
        if b'RANK' in env and b'tools/train.py' in cmd and \
                int(env[b'RANK']) not in found:
            found[int(env[b'RANK'])] = pid
            continue  # its children are data-loader workers
        todo += children
    return found


def test_two_processes_one_rank_preempted_then_resume(tmp_path, shapes_root):
    """Two processes (2 iterations per epoch, 3 epochs); rank 1 alone gets
    SIGTERM: both stop after the same iteration, one checkpoint is written,
    tools/dist_train.sh exits with 124, and --resume ends where the
    uninterrupted two-process run ends."""
    config = epoch_config(tmp_path, shapes_root, max_epochs=3)
    env = dict(PYTHON=sys.executable)

    def dist(work, port, *extra):
        return Run(['bash', 'tools/dist_train.sh', config, '2', '--work-dir',
                    str(work), '--skip-data-check', *extra],
                   PORT=str(port), **env)

    ref = dist(tmp_path / 'ref', 29541)
    assert ref.finish() == 0, ref.output[-3000:]

    work = tmp_path / 'preempted'
    run = dist(work, 29542)
    run.wait_for(r'Epoch\(train\)\s+\[2\]\[1/2\]')  # iteration 3 done
    ranks = _rank_pids(run.proc.pid)
    assert sorted(ranks) == [0, 1], ranks
    os.kill(ranks[1], signal.SIGTERM)
    assert run.finish() == PREEMPTED, run.output[-3000:]
    saved = sorted(p.name for p in work.glob('*.pth'))
    iters = [p for p in saved if p.startswith('iter_')]
    assert len(iters) == 1, saved
    stopped = int(re.fullmatch(r'iter_(\d+)\.pth', iters[0]).group(1))
    assert 3 <= stopped < 6
    out = run.output
    assert f'[rank 1] pre-empted (SIGTERM): stopped after iteration ' \
        f'{stopped}' in out, out[-3000:]
    assert "Pre-empted (another rank's signal): stopped after iteration " \
        f'{stopped}' in out, out[-3000:]

    resumed = dist(work, 29543, '--resume')
    assert resumed.finish() == 0, resumed.output[-3000:]
    assert_same_weights(tmp_path / 'ref' / 'epoch_3.pth',
                        work / 'epoch_3.pth')


def test_pretraining_sigterm_then_resume(tmp_path):
    """Iteration-based pretraining (tools/pretrain.py, InfiniteSampler, 1
    persistent worker, random crops' flip): SIGTERM, then --resume, ends
    with the uninterrupted run's weights."""
    from test_pretrain import make_crops, tiny_pretrain_config
    crops = tmp_path / 'crops'
    make_crops(crops)  # 12 images: every class
    base = tiny_pretrain_config(tmp_path, crops)
    config = tmp_path / 'pre8.py'
    config.write_text(f'''
_base_ = [{base!r}]
train_dataloader = dict(num_workers=1, persistent_workers=True)
train_cfg = dict(max_iters=8)
default_hooks = dict(checkpoint=dict(interval=100))
''')

    def cmd(work, *extra):
        return [sys.executable, 'tools/pretrain.py', str(config),
                '--work-dir', str(work), *extra]

    ref = Run(cmd(tmp_path / 'ref'))
    assert ref.finish() == 0, ref.output[-3000:]

    work = tmp_path / 'preempted'
    run = Run(cmd(work, '--preempt-signal', 'USR1'))
    run.wait_for(r'Iter\(train\)\s+\[3/8\]')
    os.kill(run.proc.pid, signal.SIGUSR1)
    assert run.finish() == PREEMPTED, run.output[-3000:]
    saved = [p.name for p in work.glob('iter_*.pth')]
    assert len(saved) == 1 and 3 <= int(saved[0][5:-4]) < 8, saved
    assert 'Pre-empted (SIGUSR1)' in run.output

    resumed = Run(cmd(work, '--resume'))
    assert resumed.finish() == 0, resumed.output[-3000:]
    assert 'skipping the batches trained before' in resumed.output
    assert_same_weights(tmp_path / 'ref' / 'iter_8.pth', work / 'iter_8.pth')
