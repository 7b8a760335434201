"""Inference speed of a detector at batch 4, 800x1200 (the paper's Table 7
protocol): from host images to final detections, host-to-device copy
included. A benchmark, not a test.

    python tools/analysis/benchmark.py configs/lighthead_v2star.py
    python tools/analysis/benchmark.py CONFIG --device cuda --fp16 --iters 50
    python tools/analysis/benchmark.py CONFIG --device cpu --peer --threads 2
    python tools/analysis/benchmark.py CONFIG --device cpu --peer \
        --backend pytorch onnxruntime
    python tools/analysis/benchmark.py CONFIG --device cpu --threads 2 \
        --backend onnxruntime onnxruntime-int8 openvino openvino-bf16 \
        openvino-int8
    python tools/analysis/benchmark.py CONFIG --device cpu --batch-size 1 \
        --iters 50 --latency --backend pytorch onnxruntime openvino

``--backend onnxruntime`` times the detector exported to one ONNX graph
(for the batch size and the shape, padded to multiples of 32) in ONNX
Runtime on the CPU, from the same host images (stacking and padding them
is part of the timed run, as mmdet's pre-processing is part of PyTorch's);
``openvino`` the same graph in OpenVINO at ``--ov-precision`` (f32 by
default), which the row's name gives as read back; ``openvino-bf16`` the
same graph at bf16 (CPUs with AVX-512 BF16 or AMX), beside f32 in the same
run. ``onnxruntime-int8``
and ``openvino-int8``: that graph in int8 (quantize_onnx.py's parts, both
calibrated on the benchmark's own images). All in one run, round-robin.
``--profile``: each runtime's own per-node profile of its backends (ONNX
Runtime's, OpenVINO's with the kernel of each operator), by part and by
operator. ``--latency``: the 50th and 95th percentiles of the timed
runs too (e.g. ``--batch-size 1 --iters 50``; the JSON always has them).
Our PyTorch path runs as a deployment would run it: BatchNorm folded into
the convolutions, and on the CPU weights and images in channels-last
layout (``optimize_for_inference``); ``--backend pytorch-as-built`` times
the model as mmdet builds it. The peer runs as torchvision ships it, unless
``--channels-last`` (weights and images of both in channels-last).

``--peer`` times torchvision's fasterrcnn_mobilenet_v3_large_fpn (random
weights, min_size 800, max_size 1200 for the default shape) on the same
images in the same run, the timed runs of the two alternating, and reports
the ratio. Without ``--checkpoint`` both detectors have random weights,
drawn with a fixed seed (the NMS time depends on the scores). ``--fp16`` and
``--channels-last`` apply to both. The JSON holds the settings and the
device, its name and the torch/CUDA/cuDNN/mmcv versions.

On CUDA the tool first checks that CUDA is available and that mmcv's ops
were built with CUDA kernels, and stops with one line naming the fix if not.
The logic is :mod:`shufflenet_det.benchmark.detector`.
"""
import argparse
import json
import os.path as osp

import torch
from mmengine.config import DictAction

from shufflenet_det.apis.detector import build_detector
from shufflenet_det.benchmark.detector import (BACKENDS, BenchmarkError,
                                               benchmark_detector,
                                               benchmark_json, check_settings,
                                               report_lines)
from shufflenet_det.benchmark.timing import environment
from shufflenet_det.utils.device import check_device
from shufflenet_det.utils.inputs import synthetic_images


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='detector config')
    p.add_argument('--checkpoint', help='trained weights (default: random)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available()
                   else 'cpu', choices=['cuda', 'cpu'])
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--shape', type=int, nargs=2, default=[800, 1200],
                   metavar=('H', 'W'), help='input height and width')
    p.add_argument('--fp16', action='store_true',
                   help='autocast to float16 (CUDA only)')
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--iters', type=int, default=None,
                   help='timed runs (default 50 on CUDA, 5 on CPU)')
    p.add_argument('--warmup', type=int, default=None,
                   help='untimed runs first (default 10 on CUDA, 1 on CPU)')
    p.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads (default: torch\'s choice)')
    p.add_argument('--peer', action='store_true',
                   help='also time torchvision fasterrcnn_mobilenet_v3_large_fpn')
    p.add_argument('--backend', nargs='+', default=['pytorch'],
                   choices=list(BACKENDS),
                   help='run our detector in PyTorch (default; BatchNorm '
                   'folded, channels-last on the CPU), in PyTorch as mmdet '
                   'builds it, in ONNX Runtime or OpenVINO (CPU), fp32, '
                   'bf16 (OpenVINO) or int8; several: in the same run')
    p.add_argument('--ov-precision', choices=['f32', 'bf16'], default='f32',
                   help='OpenVINO\'s inference precision (default: '
                   '%(default)s; bf16 needs a CPU with bf16)')
    p.add_argument('--latency', action='store_true',
                   help='also report the 50th and 95th percentiles of the '
                   'timed runs')
    p.add_argument('--profile', '--ort-profile', dest='profile',
                   action='store_true',
                   help='with ONNX Runtime or OpenVINO backends: where the '
                   'time of a run goes, by part and by operator, in each '
                   'runtime\'s own profile')
    p.add_argument('--json', help='write the results to this JSON file')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(check_device(args.device))
    try:
        check_settings(args.backend, device, args.fp16, args.ov_precision)
    except BenchmarkError as e:
        raise SystemExit(f'error: {e}') from None
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True  # as the paper's timings
    if args.threads:
        torch.set_num_threads(args.threads)
    on_gpu = device.type == 'cuda'
    args.iters = args.iters or (50 if on_gpu else 5)
    args.warmup = args.warmup if args.warmup is not None else (
        10 if on_gpu else 1)
    images = synthetic_images(args.batch_size, args.shape)
    model = build_detector(args.config, args.checkpoint,
                           args.cfg_options).to(device)
    run = benchmark_detector(
        model, images, osp.basename(args.config), device, args.backend,
        args.iters, args.warmup, fp16=args.fp16,
        channels_last=args.channels_last, peer=args.peer,
        shape=tuple(args.shape), threads=args.threads,
        profile=args.profile, ov_precision=args.ov_precision)
    env = environment(device)
    for line in report_lines(run, env, args.batch_size, args.shape,
                             args.iters, args.warmup, args.fp16,
                             args.channels_last, args.latency):
        print(line)
    if args.json:
        settings = dict(
            config=args.config, checkpoint=args.checkpoint, fp16=args.fp16,
            channels_last=args.channels_last, batch_size=args.batch_size,
            shape=args.shape, iters=args.iters, warmup=args.warmup,
            peer=args.peer, ov_precision=args.ov_precision)
        with open(args.json, 'w') as f:
            json.dump(benchmark_json(run, env, settings), f, indent=2)
    return run['results']


if __name__ == '__main__':
    main()
