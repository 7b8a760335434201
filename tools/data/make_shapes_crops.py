"""Cut the objects of a shapes dataset out as a classification set: the
embedded demo's miniature of ImageNet pretraining.

    python tools/data/make_shapes_crops.py [--data data/shapes]
        [--out data/shapes_crops] [--margin 0.15] [--background 1]

Writes ``OUT/train/<class>/<image>_<k>.png`` (mmpretrain's CustomDataset
layout, one folder per class): every annotated object of the dataset's
train split with ``--margin`` of its box size around it, plus
``--background`` crops per image that hold no object (class
``background``), so that the pretrained backbone has seen clutter too.
Crops are written to a temporary folder that then replaces OUT; running it
again on the same dataset does nothing.
"""
import argparse
import sys

from shufflenet_det.datasets.crops import make_crops


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--data', default='data/shapes')
    p.add_argument('--out', default='data/shapes_crops')
    p.add_argument('--margin', type=float, default=0.15,
                   help='context around each box, as a fraction of its '
                   'longer side (default: 0.15)')
    p.add_argument('--background', type=int, default=1,
                   help='object-free crops per image (default: 1)')
    p.add_argument('--splits', nargs='+', default=['train'],
                   choices=['train', 'val'],
                   help='the dataset splits to crop, each into OUT/<split>/ '
                   '(default: train; add val for a held-out top-1)')
    args = p.parse_args(argv)
    try:
        counts = make_crops(args.data, args.out, args.margin,
                            args.background, splits=args.splits)
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if counts is not None:
        print(f'Wrote {sum(counts.values())} crops to {args.out}: ' +
              ', '.join(f'{n} {c}' for c, n in sorted(counts.items())))
    return 0


if __name__ == '__main__':
    sys.exit(main())
