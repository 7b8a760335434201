"""Timing of full detector inference, shared by the benchmark tools.

What is timed is what the paper's Table 7 times: from a batch of host images
(uint8, as a data loader yields them) to final detections, i.e. the
host-to-device copy, normalisation, padding, the forward pass and the
post-processing (proposal NMS, PSRoI pooling, box decoding, final NMS).
Each run is synchronised on CUDA devices; the figure reported is the median
over the timed runs, after warm-up runs.
"""
import os
import statistics
import threading
import time
from contextlib import contextmanager

import torch


def build_detector(config, checkpoint=None, cfg_options=None, seed=0):
    """The config's model in eval mode (random weights unless a checkpoint
    is given; the backbone's ImageNet init is not loaded).

    Without a checkpoint, the weights are the model's own initialisation
    (``init_weights()``: the heads' small normal init, as at the start of
    training), drawn with ``seed``. The post-processing time depends on the
    scores (how many proposals survive NMS, how many boxes pass the score
    threshold); with PyTorch's default init instead, those counts, and so
    the timings, would vary from cell to cell for reasons unrelated to the
    backbone.

    ``cfg_options``: a dict of overrides, as mmengine's ``DictAction``
    parses ``--cfg-options``."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmdet.registry import MODELS

    import shufflenet_det  # noqa: F401
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if not checkpoint and cfg.model.get('backbone', {}).get('init_cfg'):
        cfg.model.backbone.init_cfg = None  # no ImageNet file needed
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu')
    else:
        # init_weights logs every parameter at INFO level: keep it quiet.
        from mmengine.logging import MMLogger
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel('WARNING')
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)
    return model.eval()


def synthetic_images(batch_size, shape, seed=0):
    """``batch_size`` random uint8 images of ``shape`` (H, W), on the host."""
    gen = torch.Generator().manual_seed(seed)
    h, w = shape
    return [
        torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)
        for _ in range(batch_size)
    ]


def mmdet_batch(images):
    """Wrap host images as the batch ``model.test_step`` takes."""
    from mmdet.structures import DetDataSample
    samples = []
    for i, img in enumerate(images):
        h, w = img.shape[-2:]
        sample = DetDataSample()
        sample.set_metainfo(
            dict(img_id=i, img_shape=(h, w), ori_shape=(h, w),
                 scale_factor=(1.0, 1.0)))
        samples.append(sample)
    return dict(inputs=list(images), data_samples=samples)


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


def time_interleaved(runs, device, iters=10, warmup=1, progress=None):
    """Time several models' inference in the same run, fairly: after one
    untimed run each (which also measures its peak memory) and ``warmup - 1``
    more, the timed runs go round-robin (A, B, A, B, ...), so a slower
    phase of a shared machine affects all of them alike.

    ``runs``: a list of callables, each one batch of inference. Returns one
    dict per run: the seconds of each timed run
    (``times``), their median (``median_s``) and ``peak_mem_mb``.
    """
    device = torch.device(device)

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
    for res in results:
        res['median_s'] = statistics.median(res['times'])
    return results
