"""Pre-emption: a signal asks training to stop at the end of the current
iteration with a complete checkpoint, and to exit with
:data:`PREEMPTED_EXIT_CODE`.

``tools/train.py`` and ``tools/pretrain.py`` call
:func:`install_preemption_handler` for SIGTERM and the ``--preempt-signal``
ones before the Runner is built. The handler only records the signal; the
resumable train loops (:mod:`shufflenet_det.engine.resumable`) look at the
record after every iteration, agree on it across processes
(:func:`agree_on_preemption`, one all-reduce of a flag) so that every rank
stops after the same iteration, save one checkpoint and raise
:class:`TrainingPreempted`.
"""
import atexit
import functools
import multiprocessing
import os
import signal

import torch
from mmengine.dist import all_reduce, get_world_size

#: Exit status of a pre-empted run (as ``timeout``'s: stopped, resumable).
PREEMPTED_EXIT_CODE = 124
#: A file that pre-empted processes append a line to (tools/dist_train.sh).
PREEMPTED_FILE_ENV = 'SHUFFLENET_DET_PREEMPTED_FILE'

_state = dict(signals=(), received=None, pid=None)


class TrainingPreempted(SystemExit):
    """Training stopped on a pre-emption signal after a complete checkpoint.

    A ``SystemExit``, so that error handlers (``except Exception``) let it
    through and the process exits with :data:`PREEMPTED_EXIT_CODE`."""

    def __init__(self, checkpoint, signame):
        super().__init__(PREEMPTED_EXIT_CODE)
        self.checkpoint = checkpoint
        self.signame = signame


def parse_signal(name):
    """``'USR1'``, ``'SIGUSR1'`` or ``'10'`` -> ``signal.SIGUSR1``."""
    text = str(name).strip().upper()
    if text.isdigit():
        try:
            return signal.Signals(int(text))
        except ValueError:
            pass
    else:
        if not text.startswith('SIG'):
            text = 'SIG' + text
        if text in signal.Signals.__members__ and text not in (
                'SIGKILL', 'SIGSTOP'):
            return signal.Signals[text]
    raise ValueError(
        f'--preempt-signal {name}: not a signal that can be caught here; '
        'use a name such as USR1, USR2, TERM or HUP')


def _handler(signum, frame):
    # Only record: printing or saving from a signal handler can re-enter
    # I/O code that was interrupted. Children forked by the data loader
    # inherit the handler; their record is never read.
    if os.getpid() == _state['pid'] and _state['received'] is None:
        _state['received'] = signal.Signals(signum).name


def install_preemption_handler(signals=('SIGTERM', )):
    """Record ``signals`` instead of dying on them (main thread only)."""
    sigs = tuple(dict.fromkeys(parse_signal(s) for s in signals))
    for sig in sigs:
        signal.signal(sig, _handler)
    _state.update(signals=sigs, received=None, pid=os.getpid())
    return sigs


def uninstall_preemption_handler():
    """Restore the default action of the signals (tests, embedding)."""
    for sig in _state['signals']:
        signal.signal(sig, signal.SIG_DFL)
    _state.update(signals=(), received=None, pid=None)


def preemption_signals():
    """The signals handled in this process (empty: pre-emption is off)."""
    return _state['signals'] if _state['pid'] == os.getpid() else ()


def preemption_received():
    """The name of the signal received in this process, or None."""
    return _state['received'] if _state['pid'] == os.getpid() else None


def agree_on_preemption():
    """True on every rank when any rank received a pre-emption signal.

    Every rank must call it after the same iteration (the loops do after
    each one): in distributed training it is a collective. Returns False at
    once, without a collective, when no handler is installed (all ranks run
    the same command, so either all or none have one)."""
    if not preemption_signals():
        return False
    flag = torch.tensor([int(preemption_received() is not None)])
    if get_world_size() > 1:
        all_reduce(flag, op='max')
    return bool(flag.item())


_exiting = None  # set to 1 in shared memory when the main process exits


def worker_exit_flag():
    """A flag shared with forked data-loader workers, set when this process
    exits (an atexit handler registered after multiprocessing's, so it runs
    before multiprocessing terminates its daemonic children)."""
    global _exiting
    if _exiting is None:
        _exiting = multiprocessing.RawValue('b', 0)
        atexit.register(lambda: setattr(_exiting, 'value', 1))
    return _exiting


def ignore_preemption_signals_in_worker(signals, exiting):
    """In a data-loader worker: ignore the pre-emption signals while the
    main process runs.

    A job scheduler may signal every process of the job; torch's workers
    die on SIGTERM, and the main process would then fail on the lost worker
    before it could save. Once the main process exits (``exiting`` set),
    the signal acts as usual: multiprocessing terminates its workers with
    SIGTERM and joins them."""
    handler = functools.partial(_worker_signal, exiting=exiting)
    for sig in signals:
        signal.signal(sig, handler)


def _worker_signal(signum, frame, exiting):
    if exiting.value:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
