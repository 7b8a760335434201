"""Training survives SIGKILL (resume gives the weights of an uninterrupted
run) and runs in several processes (tools/dist_train.sh, gloo on CPU)."""
import os
import signal
import subprocess
import sys
import time

import torch
from cli_helpers import ROOT, run_tool, tiny_config


def _weights(path):
    return torch.load(path, map_location='cpu',
                      weights_only=False)['state_dict']


def test_killed_run_resumes_to_the_same_weights(tmp_path, shapes_root):
    config = tiny_config(tmp_path, shapes_root)
    ref, work = tmp_path / 'ref', tmp_path / 'killed'

    proc = run_tool('tools/train.py', config, '--work-dir', str(ref))
    assert proc.returncode == 0, proc.stderr[-3000:]

    # Kill the second run as soon as its iteration-4 checkpoint exists.
    child = subprocess.Popen(
        [sys.executable, 'tools/train.py', config, '--work-dir', str(work)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (work / 'iter_4.pth').exists():
        assert child.poll() is None, 'training ended before iteration 4'
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not (work / 'iter_6.pth').exists()

    proc = run_tool('tools/train.py', config, '--work-dir', str(work),
                    '--resume')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Resuming' in proc.stdout + proc.stderr or \
        'resumed' in (proc.stdout + proc.stderr).lower()
    a, b = _weights(ref / 'iter_6.pth'), _weights(work / 'iter_6.pth')
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)


def test_dist_train_two_cpu_processes(tmp_path, shapes_root):
    config = tiny_config(tmp_path, shapes_root)
    work = tmp_path / 'dist'
    env = dict(os.environ, PORT='29533', PYTHON=sys.executable)
    proc = subprocess.run(
        ['bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(work),
         '--cfg-options', 'train_cfg.max_iters=2'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_2.pth']
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log


def _rank_pid(work_dir, rank):
    """The training process of ``rank`` writing to ``work_dir`` (torchrun's
    children carry LOCAL_RANK in their environment)."""
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/cmdline', 'rb') as f:
                cmd = f.read()
            with open(f'/proc/{entry}/environ', 'rb') as f:
                env = f.read().split(b'\0')
        except OSError:
            continue
        if b'tools/train.py' in cmd and str(work_dir).encode() in cmd \
                and b'torch.distributed.run' not in cmd \
                and f'LOCAL_RANK={rank}'.encode() in env:
            return int(entry)
    return None


def test_a_killed_rank_stops_the_run_which_resumes_exactly(tmp_path,
                                                          shapes_root):
    """SIGKILL to rank 1 of a two-process run: rank 0 and torchrun stop
    within a bounded time with a message that says what to do (no hang, no
    "pre-empted"), and --resume reaches the weights of a run that was not
    interrupted."""
    config = tiny_config(tmp_path, shapes_root)
    ref, work = tmp_path / 'ref', tmp_path / 'killed'
    env = dict(os.environ, PORT='29537', PYTHON=sys.executable,
               OMP_NUM_THREADS='1')
    cmd = ['bash', 'tools/dist_train.sh', config, '2', '--cfg-options',
           'train_cfg.max_iters=12']
    proc = subprocess.run(cmd + ['--work-dir', str(ref)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    # Which checkpoints exist tells a failure in training from one at exit.
    assert proc.returncode == 0, (sorted(p.name for p in ref.glob('*.pth')),
                                  (proc.stdout + proc.stderr)[-3000:])

    child = subprocess.Popen(cmd + ['--work-dir', str(work)], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    deadline = time.time() + 600
    while not (work / 'iter_4.pth').exists():
        assert child.poll() is None, child.stdout.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    victim = _rank_pid(work, 1)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    killed = time.time()
    try:
        out, _ = child.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        raise AssertionError('the run did not stop within 120 s of the kill')
    assert time.time() - killed < 120
    assert child.returncode == 1, out[-3000:]
    assert _rank_pid(work, 0) is None  # rank 0 is gone too
    assert 'Signal 9 (SIGKILL) received by PID' in out
    assert 'Pre-empted' not in out
    assert 'Training failed' in out and 'with --resume to continue' in out
    assert not (work / 'iter_12.pth').exists()

    proc = subprocess.run(cmd + ['--work-dir', str(work), '--resume'],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    a, b = _weights(ref / 'iter_12.pth'), _weights(work / 'iter_12.pth')
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)
