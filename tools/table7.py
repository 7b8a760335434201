"""Reproduce the ShuffleNet V2 paper's Table 7: time every cell's Light-Head
R-CNN at batch 4, 800x1200, read each cell's COCO mmAP from its work_dir
when it has been evaluated, and print the table beside the paper's, with
figures like the paper's Fig. 1 (speed vs mmAP, speed vs FLOPs).

    python tools/table7.py                       # all 20 cells, GPU if any
    python tools/table7.py --device cpu --quick  # CPU: one timed run per cell
    python tools/table7.py --families shufflenetv2 shufflenetv1 --levels 140M
    python tools/table7.py --fp16 --json table7_fp16.json --plot table7.png

The whole GPU table, fp32 and fp16, in one command (table7.json, table7.md
and table7.png in the output directory):

    python tools/table7.py --device cuda --precisions fp32 fp16 \
        --out-dir work_dirs/table7_gpu

The mini Table 7 on the embedded data, with both columns measured: each
cell's backbone pretrained on crops, its Table 7 config fine-tuned on the
shapes set (COCO mAP on its val split), then every cell timed as above
(shufflenet_det.table7.embedded; resumes a run that was cut off):

    python tools/table7.py --embedded --levels 40M --device cpu

The cells of one level are timed round-robin (A, B, C, A, B, C, ...). On
CUDA the tool first checks that CUDA is available and that mmcv's ops have
CUDA kernels, and stops with one line naming the fix if not.

mmAP comes from work_dirs/lighthead_<family>_<level>/ (the default work_dir
of tools/train.py and tools/test.py for configs/table7/*): the last
``coco/bbox_mAP`` logged there. (shufflenet_det.table7.timing)
"""
import argparse
import os.path as osp

import torch

from shufflenet_det import table7
from shufflenet_det.table7.configs import WORK_DIRS
from shufflenet_det.table7.timing import TimingSettings, reproduce


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--families', nargs='+', default=list(table7.FAMILIES),
                   choices=table7.FAMILIES)
    p.add_argument('--levels', '--level', nargs='+', default=None,
                   choices=table7.LEVELS,
                   help='(default: all four; 40M with --embedded)')
    p.add_argument('--embedded', action='store_true',
                   help='first pretrain and fine-tune every cell on the '
                   'embedded shapes data (tools/table7_embedded.py) and '
                   'report its mAP (default --out-dir: '
                   'work_dirs/table7_embedded)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available()
                   else 'cpu', choices=['cuda', 'cpu'])
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--shape', type=int, nargs=2, default=[800, 1200],
                   metavar=('H', 'W'))
    p.add_argument('--precisions', nargs='+', choices=['fp32', 'fp16'],
                   default=None,
                   help='time every cell in each (fp16: autocast; default '
                   'fp32)')
    p.add_argument('--fp16', action='store_true',
                   help='the same as --precisions fp16')
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--iters', type=int, default=None,
                   help='timed runs per cell (default 30 CUDA, 3 CPU)')
    p.add_argument('--warmup', type=int, default=None,
                   help='untimed runs per cell first (default 10 CUDA, 1 CPU)')
    p.add_argument('--quick', action='store_true',
                   help='one warm-up and one timed run per cell: checks the '
                   'command (on a CPU, fp16 included)')
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--jobs', type=int, default=None,
                   help='--embedded: training steps run at once, each on '
                   'cores / jobs threads (default: 2 where there are 2 '
                   'cores or more)')
    p.add_argument('--work-dirs', default=WORK_DIRS,
                   help='where the cells\' work_dirs are')
    p.add_argument('--json', help='write the measured table here')
    p.add_argument('--markdown', help='write the table, as in README, here')
    p.add_argument('--plot', help='save the figures to this PNG')
    p.add_argument('--out-dir', help='write table7.json, table7.md and '
                   'table7.png here (unless --json/--markdown/--plot say '
                   'otherwise)')
    args = p.parse_args(argv)
    if args.levels is None:
        args.levels = ['40M'] if args.embedded else list(table7.LEVELS)
    if args.embedded:
        args.out_dir = args.out_dir or osp.join(WORK_DIRS, 'table7_embedded')
        args.work_dirs = args.out_dir
    if args.fp16 and args.precisions and args.precisions != ['fp16']:
        p.error('--fp16 is --precisions fp16: give one of them')
    args.precisions = args.precisions or (['fp16'] if args.fp16 else ['fp32'])
    if args.out_dir:
        for key, name in (('json', 'table7.json'), ('markdown', 'table7.md'),
                          ('plot', 'table7.png')):
            if getattr(args, key) is None:
                setattr(args, key, osp.join(args.out_dir, name))
    return args


def main(argv=None):
    args = parse_args(argv)
    settings = TimingSettings(
        families=args.families, levels=args.levels,
        precisions=args.precisions, device=args.device,
        batch_size=args.batch_size, shape=args.shape, iters=args.iters,
        warmup=args.warmup, quick=args.quick,
        channels_last=args.channels_last, work_dirs=args.work_dirs,
        embedded=args.embedded)
    # The device is checked first, before any model is built.
    return reproduce(settings, json_path=args.json,
                     markdown_path=args.markdown, plot_path=args.plot,
                     threads=args.threads, jobs=args.jobs,
                     embedded_dir=args.out_dir if args.embedded else None)


if __name__ == '__main__':
    main()
