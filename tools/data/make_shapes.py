"""Generate the embedded detection dataset (COCO format) into data/shapes.

    python tools/data/make_shapes.py [--out data/shapes] [--num-train 300]
        [--num-val 100] [--seed 0] [--force]

Same arguments, same bytes. Running it again on a complete dataset made
with the same arguments does nothing.
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from shufflenet_det.datasets.shapes import generate  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default='data/shapes')
    p.add_argument('--num-train', type=int, default=300)
    p.add_argument('--num-val', type=int, default=100)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--force', action='store_true',
                   help='replace a different dataset at --out')
    args = p.parse_args(argv)
    start = time.time()
    try:
        summary = generate(args.out, args.num_train, args.num_val, args.seed,
                           args.force)
    except FileExistsError as e:
        sys.exit(f'error: {e}')
    if summary is not None:
        print(f'Wrote {args.out} in {time.time() - start:.1f} s.')


if __name__ == '__main__':
    main()
