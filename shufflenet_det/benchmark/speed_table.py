"""Several detectors, each at its own input size, in the backends and
thread counts asked, timed by one command
(``tools/analysis/speed_table.py``): e.g. ThunderNet at 320x320 beside the
Light-Head R-CNN cells of the same backbone FLOPs at 800x1200, batch 1, on
one thread and on two; or every Table 7 cell in PyTorch and OpenVINO.

Each detector is timed by :func:`~.detector.benchmark_detector` (its
backends round-robin, on random host images of its size, from host images
to final detections, post-processing included), one detector after the
other, for each thread count (torch's threads and the runtimes' alike).
The detectors are built by the caller's ``build`` (the tool's:
:func:`shufflenet_det.apis.build_detector`, random weights drawn with a
fixed seed, so that the post-processing is timed on the same counts in
every backend).
"""
import os.path as osp

import torch

from ..utils.inputs import synthetic_images
from .detector import BenchmarkError, benchmark_detector, check_settings


def parse_entry(text, default_shape=(800, 1200)):
    """``CONFIG`` or ``CONFIG@HxW`` -> (config, (H, W)); the size defaults
    to ``default_shape``."""
    config, at, size = text.partition('@')
    if not at:
        return config, tuple(default_shape)
    try:
        h, w = (int(v) for v in size.lower().split('x'))
    except ValueError:
        h = w = 0
    if h <= 0 or w <= 0:
        raise BenchmarkError(f'{text}: give the input size as CONFIG@HxW '
                             f'(e.g. {config}@320x320)')
    return config, (h, w)


def speed_table(build, entries, backends=('pytorch', ), threads=(None, ),
                batch_size=1, iters=10, warmup=2, ov_precision='f32',
                cfg_options=None, log=print):
    """Time each detector of ``entries`` ((config, (H, W)) pairs; built by
    ``build(config, cfg_options=...)``, in eval mode) in
    ``backends`` (:data:`~.detector.BACKENDS`; the CPU), at ``batch_size``,
    once for each thread count of ``threads`` (None: torch's default).
    ``cfg_options`` (a dict, as ``--cfg-options``) applies to every config
    (e.g. plain NMS for ThunderNet's graph). ``log`` gets a line per
    timed backend.

    Returns:
        list[dict]: one row per (threads, detector, backend): ``config``,
        ``shape``, ``threads``, ``backend``, ``label`` (the backend as the
        benchmark names it, OpenVINO's with its precision), ``p50_ms``,
        ``p95_ms``, ``median_ms``, ``images_per_s``, ``noisy``.
    """
    check_settings(backends, 'cpu', False, ov_precision)
    for config, _ in entries:
        if not osp.isfile(config):
            raise BenchmarkError(f'{config}: no such config')
    default_threads = torch.get_num_threads()
    rows = []
    for n in threads:
        torch.set_num_threads(n or default_threads)
        for config, shape in entries:
            model = build(config, cfg_options=cfg_options)
            run = benchmark_detector(
                model, synthetic_images(batch_size, shape),
                osp.basename(config), 'cpu', backends, iters, warmup,
                shape=shape, threads=n or default_threads, progress=False,
                ov_precision=ov_precision)
            for res, label in zip(run['results'], run['labels']):
                row = dict(
                    config=config, shape=list(shape),
                    threads=n or default_threads, backend=res['backend'],
                    label=label, p50_ms=1000 * res['p50_s'],
                    p95_ms=1000 * res['p95_s'],
                    median_ms=1000 * res['median_s'],
                    images_per_s=res['images_per_s'], noisy=res['noisy'])
                rows.append(row)
                log(row_line(row))
            del model, run
    torch.set_num_threads(default_threads)
    return rows


def row_line(row):
    """One row as the console and the Markdown table show it."""
    h, w = row['shape']
    return (f'| {osp.splitext(osp.basename(row["config"]))[0]} | {h}x{w} | '
            f'{row["threads"]} | {row["label"]} | {row["p50_ms"]:.1f} | '
            f'{row["p95_ms"]:.1f} | {row["images_per_s"]:.2f}'
            f'{" (noisy)" if row["noisy"] else ""} |')


def markdown(rows, batch_size, iters, warmup, device_name):
    """The rows as a Markdown table, with what was timed and where."""
    lines = [f'Batch {batch_size}, {warmup} warm-up and {iters} timed runs '
             f'per backend, on {device_name}; random weights (seed 0); '
             'host images to final detections.', '',
             '| config | input | threads | backend | p50 ms | p95 ms | '
             'images/s |', '|---|---|---|---|---|---|---|']
    lines += [row_line(r) for r in rows]
    return '\n'.join(lines) + '\n'
