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
After ``--warmup`` untimed rounds, the models run in turn, round after
round (so that a load change on a shared machine hits all of them alike),
and each one's median over ``--iters`` rounds is reported, as images/s and
as the ratio to the peer. The paper's figures (GTX 1080 Ti, whole
detector) are printed for the ordering, not to compare values.
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from shufflenet_det import table7  # noqa: E402

PEER = 'torchvision shufflenet_v2_x1_0 (conv1..conv5)'


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


def torchvision_peer():
    """torchvision's ShuffleNet V2 1x up to conv5 (random weights)."""
    import torchvision
    net = torchvision.models.shufflenet_v2_x1_0(weights=None)
    return torch.nn.Sequential(net.conv1, net.maxpool, net.stage2,
                               net.stage3, net.stage4, net.conv5)


def time_models(models, inputs, iters, warmup, device, log=print):
    """Median seconds per forward of each model, run in turn each round.

    Args:
        models (dict[str, nn.Module]): name -> model (eval mode, on device).
        inputs (Tensor): the batch.
        iters (int): timed rounds.
        warmup (int): untimed rounds first.

    Returns:
        dict[str, list[float]]: name -> the timed seconds of each round.
    """
    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    times = {name: [] for name in models}
    with torch.inference_mode():
        for r in range(warmup + iters):
            for name, model in models.items():
                sync()
                start = time.perf_counter()
                model(inputs)
                sync()
                if r >= warmup:
                    times[name].append(time.perf_counter() - start)
            kind = 'warm-up' if r < warmup else 'timed'
            log(f'round {r + 1}/{warmup + iters} ({kind}) done')
    return times


def main(argv=None):
    args = parse_args(argv)
    import shufflenet_det  # noqa: F401  (registers the backbones)
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
    times = time_models(models, inputs, args.iters, args.warmup, device,
                        log=lambda msg: print(msg, flush=True))

    results = []
    peer_ips = None
    if 'peer' in times:
        peer_ips = args.batch_size / statistics.median(times['peer'])
    for name, runs in times.items():
        median = statistics.median(runs)
        ips = args.batch_size / median
        row = dict(
            name=PEER if name == 'peer' else table7.DISPLAY_NAMES[name],
            family=None if name == 'peer' else name, level=args.level,
            backbone=configs.get(name), median_s=round(median, 4),
            times_s=[round(t, 4) for t in runs],
            images_per_s=round(ips, 3),
            ratio_to_peer=round(ips / peer_ips, 3) if peer_ips else None,
            paper_gpu_images_per_s=None if name == 'peer' else
            table7.paper(name, args.level)['speed'])
        results.append(row)

    print(f'\n{"backbone":<46} {"median s":>9} {"images/s":>9} '
          f'{"vs peer":>8} {"paper GPU*":>10}')
    for r in results:
        ratio = '' if r['ratio_to_peer'] is None else \
            f'{r["ratio_to_peer"]:.2f}'
        paper = '' if r['paper_gpu_images_per_s'] is None else \
            str(r['paper_gpu_images_per_s'])
        print(f'{r["name"]:<46} {r["median_s"]:>9.3f} '
              f'{r["images_per_s"]:>9.2f} {ratio:>8} {paper:>10}')
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
