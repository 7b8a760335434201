"""mmengine checkpoints round-trip under torch >= 2.6 (weights_only loading)."""
import collections
import os.path as osp
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner

from shufflenet_det.utils.checkpoint import load_checkpoint_file


class TinyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, x, mode='loss'):  # x: (B, 2)
        return dict(loss=((self.fc(x) - 1)**2).mean())


def _runner(work_dir, max_iters, resume=False, load_from=None):
    torch.manual_seed(0)
    data = [dict(x=torch.arange(2.) * i) for i in range(8)]
    return Runner(
        model=TinyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=data, batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01,
                                          momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', by_epoch=False,
                             milestones=[3]),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        resume=resume,
        load_from=load_from)


def test_runner_checkpoint_resumes_and_loads(tmp_path):
    # Uninterrupted reference: 6 iterations.
    ref = _runner(tmp_path / 'ref', 6)
    ref.train()

    # 4 iterations, then a new Runner resumes from iter_4.pth to 6.
    _runner(tmp_path / 'run', 4).train()
    assert (tmp_path / 'run' / 'iter_4.pth').is_file()
    resumed = _runner(tmp_path / 'run', 6, resume=True)
    resumed.train()
    assert resumed.iter == 6
    for a, b in zip(ref.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(a, b)

    # load_from takes the weights only.
    loaded = _runner(tmp_path / 'load', 0,
                     load_from=str(tmp_path / 'run' / 'iter_6.pth'))
    loaded.load_or_resume()
    for a, b in zip(resumed.model.parameters(), loaded.model.parameters()):
        torch.testing.assert_close(a, b)


class Payload:

    def __reduce__(self):
        return (print, ('code ran',))


def test_foreign_objects_are_refused_with_the_file_name(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': Payload()}, path)
    with pytest.raises(pickle.UnpicklingError, match='evil.pth'):
        load_checkpoint_file(str(path))


def test_getattr_is_allowed_only_for_history_buffer_statistics(tmp_path):
    path = tmp_path / 'getattr.pth'

    class GetattrPayload:

        def __reduce__(self):
            return (getattr, (collections.OrderedDict, 'fromkeys'))

    torch.save({'x': GetattrPayload()}, path)
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        load_checkpoint_file(str(path))


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothere.pth'):
        load_checkpoint_file(str(tmp_path / 'nothere.pth'))


# The child of test_checkpoint_writes_are_atomic: it saves a checkpoint
# through mmengine's save_checkpoint (the backend shufflenet_det
# registers), with the files it opens for writing wrapped so that the
# first large write puts half its bytes on disk, reports the file written
# and that count through the pipe whose descriptor is its second argument
# (its stdout carries mmengine's warnings), and blocks until the parent
# kills it.
_HALF_WRITER = r"""
import builtins, json, os, sys, time
import torch
import shufflenet_det  # noqa: F401  (the atomic backend)
from mmengine.runner.checkpoint import save_checkpoint


class HalfWriter:
    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.f.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def write(self, data):
        if len(data) < 2**20:
            return self.f.write(data)
        half = len(data) // 2
        self.f.write(memoryview(data)[:half])
        self.f.flush()
        path = os.readlink(f'/proc/self/fd/{self.f.fileno()}')
        report(dict(path=path, written=half, total=len(data)))
        time.sleep(600)  # killed here, half-way through the write


def wrap(opener):
    def opened(file, mode='r', *args, **kwargs):
        f = opener(file, mode, *args, **kwargs)
        return HalfWriter(f) if 'w' in mode or 'a' in mode else f
    return opened


def report(msg):
    os.write(int(sys.argv[2]), (json.dumps(msg) + '\n').encode())


os.fdopen = wrap(os.fdopen)
builtins.open = wrap(builtins.open)
save_checkpoint({'state_dict': {'w': torch.ones(2**20)}}, sys.argv[1])
report('finished')  # the write was never intercepted
"""


def test_checkpoint_writes_are_atomic(tmp_path):
    """A writer killed half-way through writing a checkpoint leaves the
    previous one intact and loadable at the target path: the bytes go to a
    temporary file in the same folder, renamed over the target only once
    complete. The kill comes while the child is inside the write, after it
    has put half the bytes on disk (it says so and waits), not after a
    guessed delay."""
    import json
    import os
    import signal
    import subprocess
    import sys

    from mmengine.runner.checkpoint import save_checkpoint

    import shufflenet_det  # noqa: F401
    target = tmp_path / 'iter_1.pth'
    save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, str(target))
    before = target.read_bytes()

    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, '-c', _HALF_WRITER, str(target), str(write_end)],
        pass_fds=(write_end, ), stdout=subprocess.DEVNULL)
    os.close(write_end)  # EOF on read_end if the child dies first
    try:
        with os.fdopen(read_end) as pipe:
            line = pipe.readline()
        assert line.startswith('{'), f'the write was not reached: {line!r}'
        # The child is blocked inside the write: half of a 4 MB checkpoint
        # is on disk, in a file that is not the target.
        report = json.loads(line)
        written = report['written']
        assert written == report['total'] // 2 and written > 2**21
        partial = report['path']
        assert osp.dirname(partial) == str(tmp_path)  # os.replace: one fs
        assert partial != str(target), 'the checkpoint is written in place'
        assert osp.getsize(partial) == written
        assert target.read_bytes() == before
    finally:
        proc.kill()  # SIGKILL
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # The previous checkpoint, byte for byte, and it loads.
    assert target.read_bytes() == before
    state = torch.load(target, weights_only=True)['state_dict']
    assert torch.equal(state['w'], torch.zeros(3))
    # Beside it only the half-written temporary file (a stray, never
    # read as a checkpoint).
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, osp.basename(partial)])
    assert osp.getsize(partial) == written


def test_resume_skips_a_truncated_latest_checkpoint(tmp_path):
    from shufflenet_det.utils.checkpoint import find_resumable_checkpoint
    assert find_resumable_checkpoint(str(tmp_path)) is None
    torch.save({'x': torch.ones(1)}, tmp_path / 'iter_2.pth')
    torch.save({'x': torch.ones(1)}, tmp_path / 'iter_4.pth')
    data = (tmp_path / 'iter_4.pth').read_bytes()
    (tmp_path / 'iter_4.pth').write_bytes(data[:len(data) // 2])
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    (tmp_path / 'last_checkpoint').write_text('')  # killed while writing it
    assert find_resumable_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
