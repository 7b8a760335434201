"""Forward speed of the Table 7 backbones alone, at the detection input.

    python tools/analysis/backbone_speed.py                  # 140M level
    python tools/analysis/backbone_speed.py --threads 2 --iters 5 \
        --json work_dirs/backbone_speed.json
    python tools/analysis/backbone_speed.py --level 40M --device cuda

A benchmark, not a test. Times the forward of each family's backbone at one
FLOPs level (``shufflenet_det.table7``, detection form: C4 and C5 out), in
eval mode under ``torch.inference_mode``, on a batch of 4 random
800x1200 images, beside a peer from outside the project measured in the
same run: torchvision's ``shufflenet_v2_x1_0`` feature extractor (conv1 to
conv5, random weights), the network our ShuffleNet v2 1x reimplements.
After ``--warmup`` untimed runs each (at least one), the models run in
turn, round after round (so that a load change on a shared machine hits
all of them alike; :func:`shufflenet_det.benchmark.backbone.time_backbones`),
and each one's median over ``--iters`` rounds is reported, as images/s and
as the ratio to the peer. The paper's figures (GTX 1080 Ti, whole
detector) are printed for the ordering, not to compare values.
"""
import argparse
import json

import torch

from shufflenet_det import table7
from shufflenet_det.benchmark.backbone import (PEER, report_lines, speed_row,
                                               time_backbones,
                                               torchvision_peer)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--level', default='140M', choices=table7.LEVELS)
    p.add_argument('--families', nargs='+', default=list(table7.FAMILIES),
                   choices=table7.FAMILIES)
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--shape', type=int, nargs=2, default=[800, 1200],
                   metavar=('H', 'W'), help='input height and width')
    p.add_argument('--iters', type=int, default=5,
                   help='timed rounds (default 5)')
    p.add_argument('--warmup', type=int, default=1,
                   help='untimed rounds first (default 1)')
    p.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads (default: torch\'s choice)')
    p.add_argument('--no-peer', action='store_true',
                   help='leave torchvision\'s peer out')
    p.add_argument('--json', help='write the results to this JSON file')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmdet.registry import MODELS

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(args.batch_size, 3, *args.shape,
                         generator=gen).to(device)

    models, configs = {}, {}
    for family in table7.FAMILIES:
        if family in args.families:
            configs[family] = table7.backbone_cfg(family, args.level)
            models[family] = MODELS.build(configs[family])
    if not args.no_peer:
        models['peer'] = torchvision_peer()
    for model in models.values():
        model.to(device).eval()

    print(f'{len(models)} backbones, batch {args.batch_size}, '
          f'{args.shape[0]}x{args.shape[1]}, {args.device}, '
          f'{torch.get_num_threads()} threads, {args.warmup} warm-up + '
          f'{args.iters} timed rounds', flush=True)
    times = time_backbones(models, inputs, args.iters, args.warmup, device,
                           log=lambda msg: print(msg, flush=True))

    results = []
    for name, runs in times.items():
        peer = name == 'peer'
        results.append(dict(
            name=PEER if peer else table7.DISPLAY_NAMES[name],
            family=None if peer else name, level=args.level,
            backbone=configs.get(name),
            **speed_row(runs, args.batch_size, times.get('peer')),
            paper_gpu_images_per_s=None if peer else
            table7.paper(name, args.level)['speed']))
    print()
    for line in report_lines(results):
        print(line)
    print('* the paper times the whole detector on a GTX 1080 Ti (Table 7);'
          ' here: the backbone alone.')
    if args.json:
        meta = dict(level=args.level, batch_size=args.batch_size,
                    shape=args.shape, device=args.device,
                    threads=torch.get_num_threads(), iters=args.iters,
                    warmup=args.warmup, torch=torch.__version__)
        with open(args.json, 'w') as f:
            json.dump(dict(meta=meta, results=results), f, indent=1)
        print(f'wrote {args.json}')


if __name__ == '__main__':
    main()
