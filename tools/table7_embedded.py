"""The mini Table 7 on the embedded data, its training half: for each cell,
the backbone pretrained on crops of the shapes data (tools/pretrain.py),
then the cell's Table 7 config fine-tuned on the shapes set
(tools/train.py), COCO mAP on its val split; every finished step skipped, a
step cut off resumed. ``python tools/table7.py --embedded`` runs this and
then times the cells (docs/table7_embedded.md).

    python tools/table7_embedded.py --levels 40M
    python tools/table7_embedded.py --families shufflenetv2 --quick \
        --out-dir /tmp/emb                       # checks the command

The configs run are written next to their logs (``OUT/<step>_<cell>.py``):
``python tools/train.py OUT/finetune_<cell>.py`` repeats one by hand.
(shufflenet_det.table7.embedded)
"""
import argparse
import os.path as osp

from shufflenet_det import table7
from shufflenet_det.table7.configs import WORK_DIRS
from shufflenet_det.table7.embedded import run


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--families', nargs='+', default=list(table7.FAMILIES),
                   choices=table7.FAMILIES)
    p.add_argument('--levels', '--level', nargs='+', default=['40M'],
                   choices=table7.LEVELS)
    p.add_argument('--out-dir', default=osp.join(WORK_DIRS,
                                                 'table7_embedded'),
                   help='the steps\' work_dirs, logs and configs')
    p.add_argument('--quick', action='store_true',
                   help='a few images and iterations, the data in --out-dir')
    p.add_argument('--jobs', type=int, default=None,
                   help='training steps run at once, each on cores / jobs '
                   'threads (default: 2 where there are 2 cores or more)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    return run(args.families, args.levels, osp.abspath(args.out_dir),
               quick=args.quick, jobs=args.jobs)


if __name__ == '__main__':
    main()
