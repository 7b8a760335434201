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


def optimize_for_inference(model, channels_last=None):
    """The PyTorch path's inference rewrites, in place:

    - BatchNorm folded into the convolution before it
      (:func:`shufflenet_det.deploy.fuse.fold_batchnorm`);
    - weights, and the images entering the backbone, in channels-last
      layout (:func:`use_channels_last`), by default on the CPU only: there
      oneDNN runs the depthwise and 1x1 convolutions of the backbones
      without converting NCHW tensors to its own layout and back at every
      convolution (measured on the 2-core CPU of docs/benchmarks.md: the ShuffleNet
      V2* backbone at batch 4, 800x1200 about 1.7x faster).

    Returns:
        dict: ``batchnorm_folded`` (how many), ``channels_last`` (bool).
    """
    from shufflenet_det.deploy.fuse import fold_batchnorm
    model.eval()
    folded = fold_batchnorm(model)
    if channels_last is None:
        params = list(model.parameters())
        channels_last = not params or params[0].device.type == 'cpu'
    if channels_last:
        use_channels_last(model, model.backbone)
    return dict(batchnorm_folded=folded, channels_last=bool(channels_last))


class OnnxRuntimeDetector:
    """``model`` exported to ONNX (:mod:`shufflenet_det.deploy`) and run
    by ONNX Runtime on the CPU, called as the benchmark times a detector:
    from host images (uint8 (3, H, W), BGR as mmdet's loader gives them) to
    detections. The host-side part is what a deployment does: the batch
    stacked as float32 RGB and padded to multiples of 32 with the mean
    colour (which the graph's normalisation turns into mmdet's zero
    padding).

    Args:
        model: a ``LightHeadRCNN`` in eval mode.
        batch_size (int), shape ((H, W)): the images that will be run; the
            graph is exported for exactly these (padded).
        path (str): where to write the graph.
        threads (int, optional): ONNX Runtime's intra-op threads.
    """

    def __init__(self, model, batch_size, shape, path, threads=None):
        from shufflenet_det.deploy import export_onnx, ort_session
        from shufflenet_det.deploy.quantize import input_fill
        h, w = shape
        self.shape = (h, w)
        self.padded = (-(-h // 32) * 32, -(-w // 32) * 32)
        self.batch_size, self.threads = batch_size, threads
        wrapper = export_onnx(model, path, self.padded, batch_size)
        # The graph flips RGB to BGR before normalising when to_bgr.
        self.fill = input_fill(wrapper.mean.flatten().numpy(),
                               bgr_to_rgb=not wrapper.to_bgr)
        self.session = ort_session(path, threads)
        self.path = path

    def int8(self, path, calib_images):
        """The same detector quantised to int8
        (:func:`shufflenet_det.deploy.quantize.quantize_graph`, its default
        parts), calibrated on ``calib_images`` (host images as
        ``__call__`` takes, at least one batch): a new detector, its graph
        at ``path``."""
        import copy

        from shufflenet_det.deploy import ort_session
        from shufflenet_det.deploy.quantize import (ImageCalibrationReader,
                                                    quantize_graph)
        reader = ImageCalibrationReader(calib_images, self.fill,
                                        self.batch_size, self.padded)
        quantize_graph(self.path, path, reader)
        other = copy.copy(self)
        other.session, other.path = ort_session(path, self.threads), path
        return other

    def __call__(self, images):
        from shufflenet_det.deploy.quantize import graph_input
        return self.session.run(
            None, {'input': graph_input(images, self.fill, self.padded)})


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


def use_channels_last(model, backbone):
    """Weights, and the images entering ``backbone``, in channels-last
    layout (the batch a detector's own pre-processing assembles is NCHW
    contiguous). Applied alike to our detector and the peer."""
    model.to(memory_format=torch.channels_last)
    backbone.register_forward_pre_hook(lambda module, args: (
        args[0].contiguous(memory_format=torch.channels_last), *args[1:]))
    return model


def environment(device):
    """What a timing depends on, for the JSON next to it."""
    import mmcv
    import mmdet
    import torchvision

    from .device import mmcv_cuda_version
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
        mmdet=mmdet.__version__, python=platform.python_version())


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
    return (f'CPU ({env["device_name"]}), {env["cpu_threads"]} threads, '
            f'torch {env["torch"]}')


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
