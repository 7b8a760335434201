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
