"""Train detectors for the same wall-clock minutes and compare their mAP.

    python tools/analysis/same_budget.py [--minutes 10]
        [--configs configs/demo/lighthead_v2star_shapes.py
                   configs/demo/faster_rcnn_fpn_v2star_shapes.py]
        [--work-dir work_dirs/same_budget] [--json FILE]

Each config is trained in turn, from scratch, by tools/train.py with an
iteration-based loop (the config's data, model and optimizer; lr warmed up
over 50 iterations, then constant) until ``--minutes`` of training time are
spent (TrainTimeBudgetHook; validation and start-up are not counted), then
evaluated once on its val split. The default pair is the embedded demo's
Light-Head R-CNN and mmdet's Faster R-CNN with FPN on the same backbone
(ShuffleNet V2*, 40M level): what a light head buys at equal training
time. Prints a markdown table and writes it as JSON beside the runs
(shufflenet_det.benchmark.same_budget).
"""
import argparse
import os.path as osp
import sys

from shufflenet_det.benchmark.same_budget import DEFAULT_CONFIGS, compare


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--minutes', type=float, default=10.0,
                   help='training minutes per detector (default: 10)')
    p.add_argument('--configs', nargs='+', default=DEFAULT_CONFIGS)
    p.add_argument('--work-dir', default='work_dirs/same_budget')
    p.add_argument('--json', help='(default: WORK_DIR/same_budget.json)')
    args = p.parse_args(argv)
    if args.minutes <= 0:
        p.error('--minutes must be > 0')
    for cfg in args.configs:
        if not osp.isfile(cfg):
            p.error(f'config not found: {cfg}')
    return args


def main(argv=None):
    args = parse_args(argv)
    return compare(args.configs, args.minutes, args.work_dir, args.json)


if __name__ == '__main__':
    sys.exit(main())
