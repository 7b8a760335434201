"""Generate the embedded detection dataset, for users without COCO.

    python tools/data/make_shapes.py [--out data/shapes] [--num-train 300]
        [--num-val 100] [--seed 0]
        [--size W H | --min-size W H --max-size W H]
        [--min-object-size PX] [--max-objects N] [--random-color-prob P]
        [--force]

Writes COCO-format ``OUT/annotations/instances_{train,val}.json`` and the
JPEG images in ``OUT/train/`` and ``OUT/val/``; what the images and
annotations hold is described in ``shufflenet_det/datasets/shapes.py``. The
same arguments give the same bytes. Running it again with the same arguments
on a complete dataset does nothing; a different dataset at ``OUT`` is
replaced only with ``--force``.
"""
import argparse
import sys
import time

from shufflenet_det.datasets import shapes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default='data/shapes',
                   help='dataset directory (default: data/shapes)')
    p.add_argument('--num-train', type=int, default=300,
                   help='training images (default: 300)')
    p.add_argument('--num-val', type=int, default=100,
                   help='validation images (default: 100)')
    p.add_argument('--seed', type=int, default=0, help='(default: 0)')
    p.add_argument('--size', type=int, nargs=2, metavar=('W', 'H'),
                   help='one size for all images')
    p.add_argument('--min-size', type=int, nargs=2, metavar=('W', 'H'),
                   help='smallest image width and height (default: '
                   '%d %d)' % shapes.DEFAULT_MIN_SIZE)
    p.add_argument('--max-size', type=int, nargs=2, metavar=('W', 'H'),
                   help='largest image width and height (default: '
                   '%d %d)' % shapes.DEFAULT_MAX_SIZE)
    p.add_argument('--min-object-size', type=int,
                   default=shapes.MIN_OBJECT_SIZE, metavar='PX',
                   help='smallest object size; sizes are log-uniform from it '
                   'to half the shorter image side (default: %d)' %
                   shapes.MIN_OBJECT_SIZE)
    p.add_argument('--max-objects', type=int, default=shapes.MAX_OBJECTS,
                   help='objects per image: 1 to this many (default: %d)' %
                   shapes.MAX_OBJECTS)
    p.add_argument('--random-color-prob', type=float,
                   default=shapes.RANDOM_COLOR_PROB, metavar='P',
                   help='share of objects in any colour instead of their '
                   "class's (default: %g)" % shapes.RANDOM_COLOR_PROB)
    p.add_argument('--force', action='store_true',
                   help='replace a different dataset at --out')
    args = p.parse_args(argv)
    if args.size is not None:
        if args.min_size is not None or args.max_size is not None:
            p.error('--size excludes --min-size and --max-size')
        args.min_size = args.max_size = args.size
    args.min_size = args.min_size or list(shapes.DEFAULT_MIN_SIZE)
    args.max_size = args.max_size or list(shapes.DEFAULT_MAX_SIZE)
    return args


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    try:
        summary = shapes.generate(
            args.out, args.num_train, args.num_val, args.seed,
            args.min_size, args.max_size, force=args.force,
            min_object=args.min_object_size, max_objects=args.max_objects,
            random_color_prob=args.random_color_prob)
    except (FileExistsError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if summary is not None:
        print(f'Wrote {args.out} in {time.time() - start:.1f} s.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
