"""mmengine checkpoints round-trip under torch >= 2.6 (weights_only loading)."""
import collections
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


def test_checkpoint_writes_are_atomic(tmp_path):
    """A writer killed half-way leaves the previous checkpoint intact."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from mmengine.runner.checkpoint import save_checkpoint

    import shufflenet_det  # noqa: F401
    target = tmp_path / 'iter_1.pth'
    save_checkpoint({'state_dict': {'w': torch.zeros(3)}}, str(target))
    before = target.read_bytes()

    # A child process rewrites the same file with ~400 MB, killed mid-way.
    script = (
        'import time, torch, shufflenet_det\n'
        'from mmengine.fileio import get_file_backend\n'
        'import mmengine.fileio.backends.local_backend as lb\n'
        f'path = {str(target)!r}\n'
        'backend = get_file_backend(path)\n'
        'data = bytes(400 * 2**20)\n'
        'print("writing", flush=True)\n'
        'backend.put(data, path)\n')
    proc = subprocess.Popen([sys.executable, '-c', script],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'writing'
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert target.read_bytes() == before
    assert torch.load(target, weights_only=True)['state_dict']['w'].shape == (3, )


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
