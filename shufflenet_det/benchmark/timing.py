"""Timing of full detector inference, shared by the benchmark tools.

What is timed is what the paper's Table 7 times: from a batch of host images
(uint8, as a data loader yields them) to final detections, i.e. the
host-to-device copy, normalisation, padding, the forward pass and the
post-processing (proposal NMS, PSRoI pooling, box decoding, final NMS).
Each run is synchronised on CUDA devices; the figure reported is the median
over the timed runs, after warm-up runs.

Reviewed against ``torch.utils.benchmark``. Its ``Timer`` does what a GPU
timing needs: a clock read only after the device is synchronised (wall
time, not CUDA events, since the host-side work is part of what is timed
here), warm-up runs, median and interquartile range. We do the same, and use
its ``Measurement`` for the statistics and its threshold for noisy runs.
``Timer`` itself does not fit: ``timeit`` adds its own untimed runs to every
measurement (three inferences per timed one, ~1 s each on a CPU), it times
one statement at a time where we alternate several models round-robin, and
it runs with 1 thread unless told otherwise.
"""
import logging
import os
import platform
import threading
import time
from contextlib import contextmanager

import torch


class PeakRSS:
    """Samples the process' resident memory in a thread; ``peak_mb`` is the
    highest value seen above the level at start (CPU runs: what inference
    itself takes)."""

    def __init__(self, interval=0.005):
        self.interval = interval
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss():
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def peak_mb(self):
        return (self.peak - self.base) / 2**20


@contextmanager
def _peak_memory(device):
    """Yields a callable returning the peak memory (MiB) used meanwhile."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        yield lambda: (torch.cuda.max_memory_allocated(device) - base) / 2**20
    elif os.path.exists('/proc/self/statm'):
        with PeakRSS() as sampler:
            yield lambda: sampler.peak_mb
    else:
        yield lambda: float('nan')


def environment(device):
    """What a timing depends on, for the JSON next to it."""
    import mmcv
    import mmdet
    import torchvision

    from ..utils.device import mmcv_cuda_version
    device = torch.device(device)
    on_gpu = device.type == 'cuda'
    return dict(
        device=str(device),
        device_name=(torch.cuda.get_device_name(device) if on_gpu else
                     _cpu_name()),
        cpu_threads=torch.get_num_threads(),
        torch=torch.__version__, torchvision=torchvision.__version__,
        cuda=torch.version.cuda if on_gpu else None,
        cudnn=torch.backends.cudnn.version() if on_gpu else None,
        cudnn_benchmark=torch.backends.cudnn.benchmark,
        mmcv=mmcv.__version__, mmcv_cuda_ops=mmcv_cuda_version(),
        mmdet=mmdet.__version__, python=platform.python_version(),
        cpu_features=None if on_gpu else cpu_features())


#: The CPU flags (``/proc/cpuinfo``) that decide int8 and bf16 speed and
#: int8 accuracy: VNNI's int32-accumulating int8 dot products (without
#: them the int16 pair sums saturate: docs/int8.md), AVX-512 BF16, AMX.
CPU_FEATURES = ('avx2', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16',
                'amx_bf16', 'amx_int8')


def cpu_features():
    """The flags of :data:`CPU_FEATURES` this CPU has (Linux; elsewhere an
    empty list)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    flags = set(line.split(':', 1)[1].split())
                    return [x for x in CPU_FEATURES if x in flags]
    except OSError:
        pass
    return []


def has_vnni():
    """Whether this CPU has int8 dot products with int32 sums (AVX-512
    VNNI, AVX-VNNI or AMX)."""
    return bool({'avx512_vnni', 'avx_vnni', 'amx_int8'} & set(cpu_features()))


def _cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_device(env):
    """One line: the device and its software, from :func:`environment`."""
    if env['device'].startswith('cuda'):
        return (f'{env["device_name"]}, torch {env["torch"]}, CUDA '
                f'{env["cuda"]}, cuDNN {env["cudnn"]}')
    features = env.get('cpu_features')
    return (f'CPU ({env["device_name"]}'
            + (f'; {" ".join(features)}' if features else '')
            + f'), {env["cpu_threads"]} threads, torch {env["torch"]}')


def _measurement(times, name, threads):
    # torch.utils.benchmark imports cpp_extension, which warns when it finds
    # nvcc but no GPU; that is not news here.
    logging.getLogger('torch.utils.cpp_extension').setLevel(logging.ERROR)
    from torch.utils.benchmark import Measurement
    from torch.utils.benchmark.utils.common import TaskSpec
    return Measurement(number_per_run=1, raw_times=list(times),
                       task_spec=TaskSpec(stmt=name, setup='',
                                          num_threads=threads))


def time_interleaved(runs, device, iters=10, warmup=1, progress=None,
                     names=None):
    """Time several models' inference in the same run, fairly: after one
    untimed run each (which also measures its peak memory) and ``warmup - 1``
    more, the timed runs go round-robin (A, B, A, B, ...), so a slower
    phase of a shared machine affects all of them alike. On CUDA the device
    is synchronised before the clock starts and before it stops, for every
    timed run.

    ``runs``: a list of callables, each one batch of inference. Returns one
    dict per run: the seconds of each timed run (``times``), their median
    (``median_s``), interquartile range (``iqr_s``), ``noisy`` (the IQR is
    over 10% of the median: ``torch.utils.benchmark.Measurement``'s warning
    threshold) and ``peak_mem_mb``.
    """
    device = torch.device(device)
    names = names or [f'run {i}' for i in range(len(runs))]

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    total = (max(warmup, 1) + iters) * len(runs)
    done = 0

    def step():
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    results = [dict(times=[]) for _ in runs]
    with torch.inference_mode():
        for run, res in zip(runs, results):
            with _peak_memory(device) as peak_mb:
                run()
                sync()
                res['peak_mem_mb'] = peak_mb()
            step()
            for _ in range(max(warmup, 1) - 1):
                run()
                step()
        for _ in range(iters):
            for run, res in zip(runs, results):
                sync()
                start = time.perf_counter()
                run()
                sync()
                res['times'].append(time.perf_counter() - start)
                step()
    for name, res in zip(names, results):
        m = _measurement(res['times'], name, torch.get_num_threads())
        res.update(median_s=m.median, iqr_s=m.iqr, mean_s=m.mean,
                   noisy=not m.meets_confidence(0.1))  # Measurement's 10%
    return results
