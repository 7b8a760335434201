"""Where Light-Head R-CNN's inference time goes: the stages of one batch
(batch 4, 800x1200 by default), each timed separately, median of N runs.

    python tools/analysis/lighthead_profile.py configs/lighthead_v2star.py
    python tools/analysis/lighthead_profile.py CONFIG --threads 2 --ops 20
    python tools/analysis/lighthead_profile.py CONFIG --as-built  # no rewrites
    python tools/analysis/lighthead_profile.py CONFIG --compare --stat min

The stages, in order: data_preprocessor (normalise, pad), backbone, thin
map (LargeSeparableConv on C5), RPN head (3x3 conv + 1x1 convs on C4), RPN
post-processing (top-k, decode, NMS: 6000 -> 1000 per image), R-CNN
(PSRoIAlign + fc 2048 + class/box fcs on all proposals) and the R-CNN
post-processing (softmax, decode, per-class NMS). Their sum is what
tools/analysis/benchmark.py times as one piece (that tool gives the
headline images/s and the comparison with torchvision's detector).
``--ops N`` adds torch.profiler's N most expensive operators of one run.
The model runs as tools/analysis/benchmark.py runs it: BatchNorm folded into
the convolutions, weights and images in channels-last layout; ``--as-built``
profiles it as mmdet builds it. ``--stat min`` reports each stage's fastest
run instead of the median (on a machine with other load, the better
estimate of what the stage itself costs). ``--compare`` profiles the model
as built and rewritten in the same run, their runs alternating: the
before/after of the rewrites, stage by stage. The logic is
:mod:`shufflenet_det.benchmark.profile`.
"""
import argparse
import os.path as osp

import torch

from shufflenet_det.apis.detector import build_detector
from shufflenet_det.benchmark.profile import (costliest_ops, describe,
                                              prepare, profile_stages,
                                              report_lines)
from shufflenet_det.utils.inputs import mmdet_batch, synthetic_images


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='a LightHeadRCNN config')
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--shape', type=int, nargs=2, default=[800, 1200],
                   metavar=('H', 'W'))
    p.add_argument('--iters', type=int, default=3, help='timed runs')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, default=None,
                   help="torch CPU threads (default: torch's choice)")
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--as-built', action='store_true',
                   help='the model as mmdet builds it (default: BatchNorm '
                   'folded and channels-last, as the benchmark runs it)')
    p.add_argument('--stat', choices=['median', 'min'], default='median',
                   help='per stage: the median or the fastest of the runs')
    p.add_argument('--compare', action='store_true',
                   help='profile the model as built and rewritten, their '
                   'runs alternating, side by side')
    p.add_argument('--ops', type=int, default=0, metavar='N',
                   help='also print the N costliest operators')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    modes = [True, False] if args.compare else [args.as_built]
    # As built first, then the rewritten one.
    variants = [prepare(build_detector(args.config), as_built,
                        args.channels_last) for as_built in modes]
    batch = mmdet_batch(synthetic_images(args.batch_size, args.shape))
    stats, proposals = profile_stages(variants, batch, args.iters,
                                      args.warmup, args.stat)
    labels = [describe(opt, cl) for _, opt, cl in variants]
    print(f'{osp.basename(args.config)}: batch {args.batch_size}, '
          f'{args.shape[0]}x{args.shape[1]}, CPU, '
          f'{torch.get_num_threads()} threads, {" vs ".join(labels)}, '
          f'{args.stat} of {args.iters} runs; '
          f'{sum(len(p) for p in proposals)} proposals')
    for line in report_lines(stats, args.batch_size):
        print(line)
    if args.ops:
        print(costliest_ops(variants[-1], batch, args.ops))


if __name__ == '__main__':
    main()
