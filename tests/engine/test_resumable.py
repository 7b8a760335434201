"""The pieces of exact resumption, in one process: per-sample seeding that
does not depend on the workers, batch skipping, the main process's
generators left alone, the resumable checkpoint chosen by progress."""
import os.path as osp
import random
import signal

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler, InfiniteSampler
from torch.utils.data import BatchSampler, DataLoader

from shufflenet_det.engine.preemption import parse_signal
from shufflenet_det.engine.resumable import (_InfiniteIterator,
                                             make_resumable,
                                             preserve_rng_state,
                                             resumable_train_cfg)
from shufflenet_det.utils.checkpoint import find_resumable_checkpoint


class RandomDraws:
    """A 'pipeline' that draws from every global generator, as mmcv's
    transforms do (numpy, random) and some others (torch)."""

    def __len__(self):
        return 12

    def __getitem__(self, index):
        return (index, float(np.random.rand()), random.random(),
                float(torch.rand(())))


def loader(num_workers, persistent=False, seed=0, sampler='default'):
    dataset = RandomDraws()
    s = DefaultSampler(dataset, shuffle=True, seed=seed) if \
        sampler == 'default' else InfiniteSampler(dataset, seed=seed)
    plain = DataLoader(dataset, batch_sampler=BatchSampler(s, 2, False),
                       num_workers=num_workers, collate_fn=list,
                       persistent_workers=persistent)
    return make_resumable(plain, seed)


def epochs(dl, which):
    out = {}
    for epoch in which:
        dl.batch_sampler.sampler.set_epoch(epoch)
        out[epoch] = [tuple(s) for b in dl for s in b]
    return out


def test_samples_do_not_depend_on_workers_or_their_age():
    """Epoch 1 read by persistent workers that served epoch 0 equals epoch
    1 read by fresh workers (a resumed run), by 2 workers or in-process."""
    ref = epochs(loader(1, persistent=True), [0, 1])
    assert epochs(loader(1, persistent=True), [1])[1] == ref[1]
    assert epochs(loader(2), [0, 1]) == ref
    assert epochs(loader(0), [1])[1] == ref[1]
    # and the randomness is there: epochs, seeds differ
    draws = lambda e: sorted(s[1:] for s in e)  # noqa: E731
    assert draws(ref[0]) != draws(ref[1])
    assert epochs(loader(0, seed=1), [0])[0] != ref[0]


def test_plain_loader_would_differ():
    """What the wrapper fixes: with mmengine-style seeded workers, the
    epoch after a restart draws other numbers than persistent workers."""
    def plain(persistent):
        dataset = RandomDraws()
        s = DefaultSampler(dataset, shuffle=True, seed=0)

        def init(worker_id):
            np.random.seed(worker_id)
            random.seed(worker_id)
            torch.manual_seed(worker_id)
        return DataLoader(dataset, batch_sampler=BatchSampler(s, 2, False),
                          num_workers=1, collate_fn=list, worker_init_fn=init,
                          persistent_workers=persistent)

    def run(dl, which):
        out = {}
        for epoch in which:
            dl.batch_sampler.sampler.set_epoch(epoch)
            out[epoch] = [tuple(s) for b in dl for s in b]
        return out
    assert run(plain(True), [0, 1])[1] != run(plain(True), [1])[1]


def test_skip_gives_the_remaining_batches_without_loading_them():
    full = epochs(loader(1, persistent=True), [1])[1]
    dl = loader(1, persistent=True)
    dl.batch_sampler.sampler.set_epoch(1)
    dl.batch_sampler.skip_next(4)
    assert [tuple(s) for b in dl for s in b] == full[8:]
    # the skip is used once
    assert [tuple(s) for b in dl for s in b] == full


@pytest.mark.parametrize('sampler', ['default', 'infinite'])
def test_iteration_based_fast_forward(sampler):
    """Resuming at iteration 9 (past a pass with DefaultSampler) continues
    with the batches an uninterrupted run reads next."""
    dl = loader(1, persistent=True, sampler=sampler)
    it = _InfiniteIterator(dl, 0)
    straight = [next(it) for _ in range(13)]
    dl2 = loader(1, persistent=True, sampler=sampler)
    it2 = _InfiniteIterator(dl2, 9)
    assert [next(it2) for _ in range(4)] == straight[9:]
    if sampler == 'infinite':  # a pass later, other draws for a sample
        first = {s[0]: s for b in straight[:6] for s in b}
        later = {s[0]: s for b in straight[6:12] for s in b}
        assert all(first[i] != later[i] for i in first)


def test_loading_in_process_leaves_the_generators_alone():
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    expected = (torch.rand(()), np.random.rand(), random.random())
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    epochs(loader(0), [0])
    assert (torch.rand(()), np.random.rand(), random.random()) == expected
    with preserve_rng_state():
        np.random.rand()
    torch.manual_seed(3)


def test_mmengine_loops_are_swapped():
    assert resumable_train_cfg(dict(by_epoch=True, max_epochs=2)) == (
        dict(type='ResumableEpochBasedTrainLoop', max_epochs=2), True)
    assert resumable_train_cfg(dict(type='IterBasedTrainLoop', max_iters=3))[
        0]['type'] == 'ResumableIterBasedTrainLoop'
    assert resumable_train_cfg(dict(type='MyLoop'))[1] is False


def test_parse_signal():
    assert parse_signal('USR1') is signal.SIGUSR1
    assert parse_signal('sigterm') is signal.SIGTERM
    for bad in ('KILL', 'NOPE', '999'):
        with pytest.raises(ValueError, match='--preempt-signal'):
            parse_signal(bad)


def test_resumable_checkpoint_is_the_most_advanced(tmp_path):
    """With a broken pointer, the checkpoint recording the most iterations
    is chosen, not the largest number in a file name."""
    def save(name, epoch, it):
        torch.save(dict(meta=dict(epoch=epoch, iter=it), state_dict={}),
                   tmp_path / name)
    save('iter_6.pth', 1, 6)    # inside epoch 2 (4 iterations per epoch)
    save('epoch_2.pth', 2, 8)
    (tmp_path / 'last_checkpoint').write_text('')
    assert osp.basename(find_resumable_checkpoint(str(tmp_path))) == \
        'epoch_2.pth'
    save('iter_10.pth', 2, 10)
    assert osp.basename(find_resumable_checkpoint(str(tmp_path))) == \
        'iter_10.pth'
