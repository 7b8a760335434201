"""Time several detectors, each at its own input size, in several backends
and thread counts, with one command, and print (and write) one table: the
50th and 95th percentiles of the timed runs and images/s.

ThunderNet at 320x320 beside the Light-Head R-CNN cells of the same
backbone FLOPs at 800x1200, batch 1, one thread and two (docs/thundernet.md):

    python tools/analysis/speed_table.py \
        configs/thundernet/thundernet_snet49_coco.py@320x320 \
        configs/table7/lighthead_shufflenetv2_40m.py@800x1200 \
        --threads 1 2 --backend pytorch onnxruntime onnxruntime-int8 \
        openvino openvino-int8 \
        --cfg-options model.test_cfg.rcnn.nms.type=nms

Every Table 7 cell in PyTorch and OpenVINO at batch 4 (docs/table7.md):

    python tools/analysis/speed_table.py configs/table7/lighthead_*.py \
        --batch-size 4 --iters 3 --warmup 1 --threads 2 \
        --backend pytorch openvino

A config without ``@HxW`` is timed at ``--shape``. ``--cfg-options``
applies to every config (ThunderNet's soft-NMS has no ONNX operator: the
graph backends need plain NMS, and the option gives it to every backend
alike). The logic is :mod:`shufflenet_det.benchmark.speed_table`.
"""
import argparse
import json

from mmengine.config import DictAction

from shufflenet_det.apis.detector import build_detector
from shufflenet_det.benchmark.detector import BACKENDS, BenchmarkError
from shufflenet_det.benchmark.speed_table import (markdown, parse_entry,
                                                  speed_table)
from shufflenet_det.benchmark.timing import environment


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('configs', nargs='+', metavar='CONFIG[@HxW]',
                   help='detector configs, each with its input size')
    p.add_argument('--shape', type=int, nargs=2, default=[800, 1200],
                   metavar=('H', 'W'), help='the size of a config given '
                   'without one (default: %(default)s)')
    p.add_argument('--backend', nargs='+', default=['pytorch'],
                   choices=list(BACKENDS))
    p.add_argument('--threads', type=int, nargs='+', default=[None],
                   help='thread counts, each a pass over every config '
                   '(default: torch\'s)')
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--ov-precision', choices=['f32', 'bf16'], default='f32')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings of every config, key=value')
    p.add_argument('--json', help='write the rows and the machine here')
    p.add_argument('--markdown', help='write the table here')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import torch
    try:
        entries = [parse_entry(c, args.shape) for c in args.configs]
        print('| config | input | threads | backend | p50 ms | p95 ms | '
              'images/s |\n|---|---|---|---|---|---|---|', flush=True)
        rows = speed_table(build_detector, entries, args.backend,
                           args.threads,
                           args.batch_size, args.iters, args.warmup,
                           args.ov_precision, args.cfg_options)
    except BenchmarkError as e:
        raise SystemExit(f'error: {e}') from None
    env = environment(torch.device('cpu'))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(environment=env, settings=vars(args), rows=rows),
                      f, indent=2)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(markdown(rows, args.batch_size, args.iters, args.warmup,
                             f'CPU ({env["device_name"]}), torch '
                             f'{env["torch"]}'))
    return rows


if __name__ == '__main__':
    main()
