import logging
import math
import os
import random
import time

import numpy as np
import torch

from mmengine.dist import all_gather_object, get_dist_info, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmdet.registry import HOOKS

from ..datasets.loading import (UNREADABLE_IMAGES_ENV, read_unreadable_record,
                                unreadable_record_path)


class NonFiniteLossError(RuntimeError):
    """Training stopped because a loss became NaN or infinite."""


@HOOKS.register_module()
class StopOnNonFiniteLossHook(Hook):
    """Stops training at the first iteration whose losses are not finite.

    It checks every iteration (the losses are already computed, the check
    costs one host sync) and runs before the ``CheckpointHook``, so the
    iteration that produced the NaN (whose optimizer step has already
    spoiled the weights in memory) is never saved: the last checkpoint on
    disk is the last good one, and the error names it.

    Not mmdet's ``CheckInvalidLossHook`` (even with ``interval=1``): that one
    ``assert``s on the total loss only, so it fails with a bare
    ``AssertionError`` (none under ``python -O``) that names neither the
    losses nor the checkpoint to resume from.
    """

    priority = 'ABOVE_NORMAL'  # before CheckpointHook (VERY_LOW)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        losses = {
            name: float(value.detach() if torch.is_tensor(value) else value)
            for name, value in (outputs or {}).items() if 'loss' in name
        }
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if not bad:
            return
        last = runner.message_hub.get_info('last_ckpt')
        where = (f'The last good checkpoint is {last}; resume from it with '
                 '--resume.' if last else 'No checkpoint was saved before it.')
        losses = ', '.join(f'{k}={v}' for k, v in bad.items())
        raise NonFiniteLossError(
            f'Loss became non-finite at iteration {runner.iter + 1} '
            f'(epoch {runner.epoch + 1}): {losses}. Training stopped. '
            f'{where} Usual causes: a learning rate too high for the batch '
            'size (see auto_scale_lr), or invalid boxes in the annotations.')


def _rng_state():
    np_state = np.random.get_state()
    return dict(
        python=random.getstate(),
        numpy=dict(kind=np_state[0], keys=np_state[1].tolist(),
                   pos=np_state[2], has_gauss=np_state[3],
                   cached_gaussian=np_state[4]),
        torch=torch.get_rng_state())


def _set_rng_state(state):
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    n = state['numpy']
    np.random.set_state((n['kind'], np.array(n['keys'], dtype=np.uint32),
                         n['pos'], n['has_gauss'], n['cached_gaussian']))
    torch.set_rng_state(state['torch'])


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves the random number generators' states in every checkpoint and
    restores them on ``--resume``.

    mmengine restores the model, optimizer, schedulers and the data
    position, but not the Python, numpy and torch generators, so a resumed
    run draws other RPN / R-CNN samples than the run it continues. With
    this hook and the resumable train loops (which make the data pipeline's
    randomness a function of seed, epoch and sample:
    ``shufflenet_det.engine.resumable``), a run killed and resumed ends with
    the same weights as an uninterrupted one.

    In distributed training every rank's generators differ (each samples
    from its own images), and only rank 0 writes the checkpoint: every rank
    sends its states to rank 0 when a checkpoint is saved (all ranks call
    ``runner.save_checkpoint``, which this hook wraps for that), and each
    rank takes its own back on resume.
    """

    priority = 'VERY_LOW'

    def before_run(self, runner):
        if get_world_size() <= 1 or getattr(runner, '_rng_gathering', False):
            return
        save = runner.save_checkpoint
        hook = self

        def save_checkpoint(*args, **kwargs):
            hook._all_states = all_gather_object(_rng_state())
            try:
                return save(*args, **kwargs)
            finally:
                hook._all_states = None

        runner.save_checkpoint = save_checkpoint
        runner._rng_gathering = True

    def before_save_checkpoint(self, runner, checkpoint):
        checkpoint['rng_state'] = _rng_state()
        states = getattr(self, '_all_states', None)
        if states:
            checkpoint['rng_state_per_rank'] = states

    def after_load_checkpoint(self, runner, checkpoint):
        state = checkpoint.get('rng_state')
        if not state or not runner._resume:  # load_from: weights only
            return
        rank, world_size = get_dist_info()
        per_rank = checkpoint.get('rng_state_per_rank')
        if per_rank and len(per_rank) == world_size:
            state = per_rank[rank]
        _set_rng_state(state)


@HOOKS.register_module()
class UnreadableImageHook(Hook):
    """Counts the images that ``LoadImageFromFileOrSkip`` skipped.

    Each skipped image is recorded once with its reason, whichever worker
    met it, in ``WORK_DIR/unreadable_images.txt`` (the file named by the
    environment variable ``UNREADABLE_IMAGES_ENV``, which the workers
    inherit). At the end of an epoch that added to the file, and at the end
    of training, the hook logs the count and where the list is. The file
    stays in the work_dir, so a resumed run does not warn again about the
    same images.

    An iteration-based loop starts its workers when the Runner builds it,
    before any hook runs: ``tools/train.py`` sets the variable before
    building the Runner. Without it, this hook sets it in ``before_train``,
    in time for epoch-based loops.
    """

    priority = 'LOW'

    def before_train(self, runner):
        self.record = os.environ.setdefault(
            UNREADABLE_IMAGES_ENV, unreadable_record_path(runner.work_dir))
        self._reported = len(read_unreadable_record(self.record))

    def _summary(self, runner, final):
        count = len(read_unreadable_record(self.record))
        if count == 0 or (count == self._reported and not final):
            return
        self._reported = count
        when = 'Training ended with' if final else 'So far'
        print_log(
            f'{when} {count} unreadable image(s) skipped in this work_dir '
            f'(each replaced by another sample), listed in {self.record}.',
            logger='current', level=logging.WARNING)

    def after_train_epoch(self, runner):
        self._summary(runner, final=False)

    def after_train(self, runner):
        self._summary(runner, final=True)


@HOOKS.register_module()
class TrainTimeBudgetHook(Hook):
    """Ends training once ``minutes`` of training wall-clock time are spent
    (validation excluded), as if ``max_iters`` had been the current
    iteration: the CheckpointHook saves the last checkpoint and the loop
    runs its final validation. How tools/analysis/same_budget.py gives two
    detectors the same minutes.

    Iteration-based loops stop after the iteration that crosses the budget;
    epoch-based loops at the end of that epoch.

    Args:
        minutes (float): training time allowed.
    """

    priority = 'HIGH'  # before the CheckpointHook looks at max_iters

    def __init__(self, minutes):
        if not minutes > 0:
            raise ValueError(f'minutes must be > 0, got {minutes}')
        self.budget = float(minutes) * 60
        self.spent = 0.0
        self._start = None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self._start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.spent += time.perf_counter() - self._start
        if self.spent < self.budget:
            return
        loop = runner.train_loop
        if hasattr(loop, '_max_iters'):
            if loop._max_iters > runner.iter + 1:
                loop._max_iters = runner.iter + 1
                runner.logger.info(
                    f'TrainTimeBudgetHook: {self.spent / 60:.1f} min of '
                    f'training spent; stopping after iteration '
                    f'{runner.iter + 1}')
        elif loop._max_epochs > runner.epoch + 1:
            loop._max_epochs = runner.epoch + 1
            runner.logger.info(
                f'TrainTimeBudgetHook: {self.spent / 60:.1f} min of training '
                f'spent; stopping after epoch {runner.epoch + 1}')
