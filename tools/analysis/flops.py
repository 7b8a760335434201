"""FLOPs of a detector at 800x1200 (one image, test mode), with the
breakdown by part: backbone, RPN, thin feature map, R-CNN head.

    python tools/analysis/flops.py configs/lighthead_v2star.py
    python tools/analysis/flops.py CONFIG --shape 800 1200 --json out.json

Counted by mmengine's FlopAnalyzer (1 multiply-add = 1 FLOP), with a handle
for torchvision's PSRoIAlign, which it skips. NMS is not counted (its cost
depends on the boxes). The logic is :mod:`shufflenet_det.benchmark.flops`.
"""
import argparse
import json
import os.path as osp

from mmengine.config import DictAction

from shufflenet_det.apis.detector import build_detector
from shufflenet_det.benchmark.flops import detector_flops, report_lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('--shape', type=int, nargs=2, default=[800, 1200],
                   metavar=('H', 'W'))
    p.add_argument('--json', help='write the counts to this file')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)

    model = build_detector(args.config, cfg_options=args.cfg_options)
    total, by_module, skipped = detector_flops(model, tuple(args.shape))
    for line in report_lines(osp.basename(args.config), args.shape, total,
                             by_module, skipped):
        print(line)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(config=args.config, shape=args.shape,
                           total=total, by_module=by_module,
                           skipped_ops=skipped), f, indent=2)
    return total, by_module


if __name__ == '__main__':
    main()
