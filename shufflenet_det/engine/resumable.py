"""Training that a kill, a pre-emption or a resume does not change.

mmengine's Runner resumes the model, optimizer, schedulers and (with the
project's :class:`~shufflenet_det.engine.RNGStateHook`) the main process's
random generators, but three things still made a resumed run differ from
an uninterrupted one:

1. the data pipeline's randomness (flips, crops, the re-fetch of an
   unreadable image) lives in the data-loader workers, whose generators are
   seeded when the workers start: a resumed run restarts them, and
   persistent workers that lived through several epochs are not restarted
   at all in the uninterrupted run;
2. ``iter(dataloader)`` draws its workers' base seed from the global torch
   generator, once per iterator: once per run with persistent workers, once
   per epoch without, so the model's random stream (RPN / R-CNN sampling)
   shifts after a resume;
3. mmengine's ``EpochBasedTrainLoop`` resumes at the start of an epoch, so
   a checkpoint saved inside an epoch repeats the batches before it.

Here:

- :class:`SeededSampleDataset` runs every sample's pipeline with Python's,
  numpy's and torch's global generators seeded from ``(run seed, epoch,
  sample index)`` and puts the process's generators back afterwards. A
  sample's randomness then depends neither on the worker that serves it,
  nor on how long that worker lived, nor on the number of workers;
  :class:`ResumableBatchSampler` sends the epoch along with each index
  (workers forked in an earlier epoch do not know it) and skips the
  batches a resumed run has already trained, without loading them.
- :func:`build_resumable_dataloader` builds the loader as mmengine does and
  wraps it, with a private generator for the workers' base seed.
- :class:`ResumableEpochBasedTrainLoop` and
  :class:`ResumableIterBasedTrainLoop` (mmengine's loops, registered in
  mmengine's ``LOOPS``) use it, continue inside an epoch, keep validation
  from touching the training generators, and stop on pre-emption
  (:mod:`shufflenet_det.engine.preemption`).

The epoch of a sample: a sampler with an ``epoch`` attribute (mmengine's
``DefaultSampler``, mmdet's ``ClassAwareSampler``, ...) gives it; for one
without (``InfiniteSampler``: one endless stream) it is the pass over the
dataset that the sample's position in the stream falls in.
"""
import contextlib
import functools
import logging
import os
import os.path as osp
import random
import tempfile
import time

import numpy as np
import torch
from mmengine.dist import barrier, get_dist_info, is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from mmengine.runner.base_loop import BaseLoop
from mmengine.runner.utils import calc_dynamic_intervals
from torch.utils.data import (DataLoader, Dataset, IterableDataset, Sampler,
                              get_worker_info)

from .preemption import (PREEMPTED_FILE_ENV, TrainingPreempted, agree_on_preemption,
                         ignore_preemption_signals_in_worker,
                         preemption_received, preemption_signals,
                         worker_exit_flag)

_MASK64 = (1 << 64) - 1


def _splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def sample_seed(seed, epoch, index):
    """A 64-bit seed from ``(seed, epoch, index)``: splitmix64 chained
    (plain integer arithmetic, the same in every process and version;
    numpy's SeedSequence would cost 5 us a sample)."""
    x = _splitmix64(int(seed) & _MASK64)
    x = _splitmix64(x ^ (int(epoch) & _MASK64))
    return _splitmix64(x ^ (int(index) & _MASK64))


@contextlib.contextmanager
def preserve_rng_state():
    """Put Python's, numpy's and torch's (CPU) global generators back as
    they were, whatever the block draws."""
    py, nps, th = random.getstate(), np.random.get_state(), \
        torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(nps)
        torch.set_rng_state(th)


class SeededSampleDataset(Dataset):
    """Wraps a map-style dataset: ``self[(index, epoch)]`` is
    ``dataset[index]`` computed with the global generators seeded from
    ``(seed, epoch, index)``; a plain ``self[index]`` is ``dataset[index]``.

    Only torch's CPU generator is seeded (not CUDA's, which the model's
    sampling uses when the pipeline runs in the main process), and every
    generator is restored afterwards, so loading with ``num_workers=0``
    leaves the model's random stream alone. Attributes (``metainfo``,
    ``get_data_info``, ``pipeline``, ...) are the wrapped dataset's, read
    and written: mmdet's ``PipelineSwitchHook`` sets
    ``train_dataloader.dataset.pipeline``, and that must reach the data.
    """

    _OWN = ('dataset', 'seed')

    def __init__(self, dataset, seed):
        self.dataset = dataset
        self.seed = int(seed)

    def __len__(self):
        return len(self.dataset)

    def _load(self, key):
        if not isinstance(key, tuple):
            return self.dataset[key]
        index, epoch = key
        s64 = sample_seed(self.seed, epoch, index)
        random.seed(s64)
        np.random.seed(s64 & 0xFFFFFFFF)
        torch.default_generator.manual_seed(s64)
        return self.dataset[index]

    def __getitems__(self, keys):
        # torch's fetcher asks for a whole batch: the generators are saved
        # and restored once per batch (numpy's state copy is most of the
        # cost). A worker's own generators serve nobody else: not at all.
        if get_worker_info() is not None:
            return [self._load(k) for k in keys]
        with preserve_rng_state():
            return [self._load(k) for k in keys]

    def __getitem__(self, key):
        return self.__getitems__([key])[0]

    def __getattr__(self, name):
        # Not for dunders (pickle looks them up before __init__ has run) nor
        # for `dataset` itself (it would recurse).
        if name.startswith('__') or name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __setattr__(self, name, value):
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.dataset, name, value)

    def __delattr__(self, name):
        if name in self._OWN:
            object.__delattr__(self, name)
        else:
            delattr(self.dataset, name)


class ResumableBatchSampler(Sampler):
    """Wraps a batch sampler: yields its batches as ``(index, epoch)``
    pairs for :class:`SeededSampleDataset`, and after :meth:`skip_next`
    leaves out the first batches of the next iteration (their indices are
    drawn, so the sampler's stream is where it would be, but no sample is
    loaded).

    ``sampler`` is the wrapped batch sampler's sampler, where mmengine's
    ``DistSamplerSeedHook`` sets the epoch.
    """

    def __init__(self, batch_sampler):
        if not hasattr(batch_sampler, 'sampler'):
            raise TypeError(
                f'{type(batch_sampler).__name__} has no `sampler`: the '
                'resumable loops need a batch sampler that wraps a sampler '
                '(torch\'s BatchSampler, mmdet\'s AspectRatioBatchSampler)')
        self.batch_sampler = batch_sampler
        self._skip = 0

    @property
    def sampler(self):
        return self.batch_sampler.sampler

    @property
    def batch_size(self):
        return getattr(self.batch_sampler, 'batch_size', None)

    def __len__(self):
        return len(self.batch_sampler)

    def skip_next(self, num_batches):
        """The next ``iter(self)`` starts after ``num_batches`` batches."""
        self._skip = int(num_batches)

    def __iter__(self):
        # A generator: the body runs at the first next(). DataLoader calls
        # iter() twice when it starts workers and discards the first one,
        # which must not consume the skip.
        skip, self._skip = self._skip, 0
        sampler = self.sampler
        epoch = getattr(sampler, 'epoch', None)
        rank, world = get_dist_info()
        size = max(len(sampler), 1)
        drawn = 0  # indices drawn in this iteration, on this rank
        for i, batch in enumerate(self.batch_sampler):
            if i < skip:
                drawn += len(batch)
                continue
            keys = []
            for idx in batch:
                # A stream sampler: the pass over the dataset this position
                # of the (rank-interleaved) stream falls in.
                e = epoch if epoch is not None else \
                    (rank + drawn * world) // size
                keys.append((int(idx), int(e)))
                drawn += 1
            yield keys


def build_resumable_dataloader(runner, dataloader):
    """The training loader mmengine would build from ``dataloader`` (a
    config dict or a DataLoader), wrapped for exact resumption."""
    if isinstance(dataloader, dict):
        diff_rank_seed = runner._randomness_cfg.get('diff_rank_seed', False)
        dataloader = runner.build_dataloader(
            dataloader, seed=runner.seed, diff_rank_seed=diff_rank_seed)
    return make_resumable(dataloader, runner.seed)


def make_resumable(loader, seed):
    """A DataLoader equal to ``loader`` (same dataset, batches, workers,
    collate and worker_init_fn) whose samples are seeded per
    ``(seed, epoch, index)`` and that can skip batches."""
    if isinstance(loader.batch_sampler, ResumableBatchSampler):
        return loader
    if isinstance(loader.dataset, IterableDataset) or \
            loader.batch_sampler is None:
        raise TypeError(
            'The resumable train loops need a map-style dataset and a '
            'batch_size or batch_sampler in train_dataloader.')
    worker_init_fn = loader.worker_init_fn
    signals = preemption_signals()
    if signals:
        worker_init_fn = functools.partial(
            _init_worker, inner=worker_init_fn, signals=signals,
            exiting=worker_exit_flag())
    kwargs = dict(
        batch_sampler=ResumableBatchSampler(loader.batch_sampler),
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        timeout=loader.timeout,
        worker_init_fn=worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        # The workers' base seed (unused: every sample is seeded) comes from
        # here, not from the global generator the model samples from.
        generator=torch.Generator().manual_seed(int(seed) & _MASK64),
        persistent_workers=loader.persistent_workers,
        pin_memory_device=loader.pin_memory_device,
        in_order=getattr(loader, 'in_order', True))
    if loader.num_workers > 0:
        kwargs['prefetch_factor'] = loader.prefetch_factor
    return DataLoader(SeededSampleDataset(loader.dataset, seed), **kwargs)


def _init_worker(worker_id, inner, signals, exiting):
    ignore_preemption_signals_in_worker(signals, exiting)
    if inner is not None:
        inner(worker_id)


def _set_epoch(loader, epoch):
    sampler = loader.batch_sampler.sampler
    if hasattr(sampler, 'set_epoch'):
        sampler.set_epoch(epoch)


def save_preemption_checkpoint(runner):
    """Save ``iter_<N>.pth`` (N = iterations done) where the CheckpointHook
    saves, with the same options, unless it has just saved that iteration;
    point ``last_checkpoint`` at it. Returns its path."""
    hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)),
                None)
    out_dir = getattr(hook, 'out_dir', None) or runner.work_dir
    filename = f'iter_{runner.iter}.pth'
    path = osp.join(out_dir, filename)
    just_saved = hook is not None and hook.last_ckpt == path and \
        osp.isfile(path)
    if not just_saved:
        runner.save_checkpoint(
            out_dir, filename,
            save_optimizer=getattr(hook, 'save_optimizer', True),
            save_param_scheduler=getattr(hook, 'save_param_scheduler', True),
            # after the iteration: the loop has counted it already
            meta=dict(epoch=runner.epoch, iter=runner.iter),
            by_epoch=False,
            backend_args=getattr(hook, 'backend_args', None))
    runner.message_hub.update_info('last_ckpt', path)
    if is_main_process():
        # mmengine's CheckpointHook writes this pointer in place; a kill
        # then could leave it empty. Here: temporary file, then rename.
        fd, tmp = tempfile.mkstemp(dir=runner.work_dir, suffix='.tmp')
        with os.fdopen(fd, 'w') as f:
            f.write(path)
        os.replace(tmp, osp.join(runner.work_dir, 'last_checkpoint'))
    return path


class _ResumableLoopMixin:
    """What both resumable loops add to mmengine's."""

    def _run_val(self):
        # Validation draws from the global generators (its data loader's
        # base seed, at its first iteration only when its workers persist):
        # a resumed run validates at other moments of that stream.
        with preserve_rng_state():
            self.runner.val_loop.run()

    def _stop_if_preempted(self):
        """After an iteration: on every rank or none, save and exit."""
        if not agree_on_preemption():
            return
        runner = self.runner
        path = save_preemption_checkpoint(runner)
        barrier()  # the other ranks wait until rank 0 has written it
        signame = preemption_received() or 'another rank\'s signal'
        rank = get_dist_info()[0]
        print_log(
            f'Pre-empted ({signame}): stopped after iteration {runner.iter} '
            f'(epoch {runner.epoch + 1}); checkpoint {path}. Continue with '
            'the same command and --resume.', logger='current',
            level=logging.WARNING)
        if rank != 0:  # mmengine's logger shows warnings of rank 0 only
            print(f'[rank {rank}] pre-empted ({signame}): stopped after '
                  f'iteration {runner.iter}', flush=True)
        marker = os.environ.get(PREEMPTED_FILE_ENV)
        if marker:  # tools/dist_train.sh: torchrun reports 124 as 1
            with open(marker, 'a') as f:
                f.write(f'rank {rank} stopped after iteration {runner.iter}'
                        f', checkpoint {path}\n')
        raise TrainingPreempted(path, signame)


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(_ResumableLoopMixin, EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop`` (same arguments) that resumes a
    checkpoint saved inside an epoch (``CheckpointHook(by_epoch=False)``,
    or pre-emption) at the next batch of that epoch, gives every run the
    same batches (:func:`make_resumable`), and stops on pre-emption."""

    def __init__(self, runner, dataloader, *args, **kwargs):
        super().__init__(runner, build_resumable_dataloader(runner, dataloader),
                         *args, **kwargs)

    def run(self):
        try:
            self.runner.call_hook('before_train')
            while self._epoch < self._max_epochs and not self.stop_training:
                self.run_epoch()
                self._decide_current_val_interval()
                if (self.runner.val_loop is not None
                        and self._epoch >= self.val_begin
                        and (self._epoch % self.val_interval == 0
                             or self._epoch == self._max_epochs)):
                    self._run_val()
            self.runner.call_hook('after_train')
        finally:
            shutdown_workers(getattr(self.dataloader, '_iterator', None))
        return self.runner.model

    def run_epoch(self):
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        per_epoch = len(self.dataloader)
        done = self._iter - self._epoch * per_epoch
        if not 0 <= done <= per_epoch:
            raise RuntimeError(
                f'The checkpoint was saved at iteration {self._iter} of epoch '
                f'{self._epoch + 1}, which does not fit {per_epoch} '
                'iterations per epoch: the batch size, the dataset or the '
                'number of processes differ from the run that saved it.')
        if done:
            rest = (f'continuing with batch {done + 1}' if done < per_epoch
                    else 'only its end-of-epoch hooks remain')
            print_log(
                f'Resuming inside epoch {self._epoch + 1}: its first {done} '
                f'of {per_epoch} batches were trained before; {rest}.',
                logger='current')
        self.dataloader.batch_sampler.skip_next(done)
        for idx, data_batch in enumerate(self.dataloader, start=done):
            self.run_iter(idx, data_batch)
            self._stop_if_preempted()
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1


class _InfiniteIterator:
    """mmengine's ``_InfiniteDataloaderIterator`` that can start ``done``
    batches into the run without loading them: for a sampler with epochs
    (a pass ends), pass ``done // len`` at batch ``done % len``; for an
    endless one, ``done`` batches into its stream."""

    def __init__(self, dataloader, done=0):
        self._dataloader = dataloader
        sampler = dataloader.batch_sampler.sampler
        if hasattr(sampler, 'epoch'):
            self._epoch, skip = divmod(done, max(len(dataloader), 1))
        else:
            self._epoch, skip = 0, done
        _set_epoch(dataloader, self._epoch)
        if done:
            print_log(
                f'Resuming at iteration {done}: skipping the batches trained '
                'before without loading them.', logger='current')
        dataloader.batch_sampler.skip_next(skip)
        self._iterator = iter(dataloader)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self._iterator)
        except StopIteration:
            self._epoch += 1
            _set_epoch(self._dataloader, self._epoch)
            time.sleep(2)  # as mmengine: possible deadlock between epochs
            self._iterator = iter(self._dataloader)
            return next(self._iterator)


def shutdown_workers(iterator):
    """Stop a loader iterator's workers now, as torch does when the
    iterator is freed. Persistent workers would otherwise live until the
    interpreter exits, where multiprocessing terminates them with SIGTERM
    and torch's SIGCHLD handler reports "DataLoader worker ... killed by
    signal: Terminated" as a traceback."""
    stop = getattr(iterator, '_shutdown_workers', None)
    if stop is not None:
        stop()


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(_ResumableLoopMixin, IterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop`` (same arguments) that, on resume,
    skips the trained batches without loading them (mmengine loads and
    drops each one), gives every run the same batches
    (:func:`make_resumable`) and stops on pre-emption."""

    def __init__(self, runner, dataloader, max_iters, val_begin=1,
                 val_interval=1000, dynamic_intervals=None):
        # mmengine's __init__ starts the loader (and its workers) at once;
        # here it starts in run(), once resume has set the iteration.
        BaseLoop.__init__(self, runner,
                          build_resumable_dataloader(runner, dataloader))
        self._max_iters = int(max_iters)
        assert self._max_iters == max_iters, \
            f'`max_iters` should be an integer, got {max_iters}'
        self._max_epochs = 1
        self._epoch = 0
        self._iter = 0
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.stop_training = False
        if hasattr(self.dataloader.dataset, 'metainfo'):
            self.runner.visualizer.dataset_meta = \
                self.dataloader.dataset.metainfo
        self.dataloader_iterator = None
        self.dynamic_milestones, self.dynamic_intervals = \
            calc_dynamic_intervals(self.val_interval, dynamic_intervals)

    def run(self):
        try:
            self.runner.call_hook('before_train')
            self.runner.call_hook('before_train_epoch')
            self.dataloader_iterator = _InfiniteIterator(self.dataloader,
                                                         self._iter)
            while self._iter < self._max_iters and not self.stop_training:
                self.runner.model.train()
                data_batch = next(self.dataloader_iterator)
                self.run_iter(data_batch)
                self._stop_if_preempted()
                self._decide_current_val_interval()
                if (self.runner.val_loop is not None
                        and self._iter >= self.val_begin
                        and (self._iter % self.val_interval == 0
                             or self._iter == self._max_iters)):
                    self._run_val()
            self.runner.call_hook('after_train_epoch')
            self.runner.call_hook('after_train')
        finally:
            shutdown_workers(getattr(self.dataloader_iterator, '_iterator',
                                     None))
        return self.runner.model


#: mmengine's loops -> the resumable ones (tools/train.py swaps them).
RESUMABLE_LOOPS = {
    'EpochBasedTrainLoop': 'ResumableEpochBasedTrainLoop',
    'IterBasedTrainLoop': 'ResumableIterBasedTrainLoop',
}


def resumable_train_cfg(train_cfg):
    """``train_cfg`` with mmengine's loops (by ``type`` or ``by_epoch``)
    replaced by the resumable ones; (new cfg, whether it is resumable)."""
    cfg = dict(train_cfg)
    loop_type = cfg.get('type')
    if loop_type is None:
        by_epoch = cfg.pop('by_epoch', True)
        cfg['type'] = RESUMABLE_LOOPS[
            'EpochBasedTrainLoop' if by_epoch else 'IterBasedTrainLoop']
        return cfg, True
    if isinstance(loop_type, str):
        name = loop_type.split('.')[-1]
        if name in RESUMABLE_LOOPS:
            cfg['type'] = RESUMABLE_LOOPS[name]
            return cfg, True
        if name in RESUMABLE_LOOPS.values():
            return cfg, True
    return cfg, False
