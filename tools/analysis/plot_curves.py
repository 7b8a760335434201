"""Training curves of a work_dir: loss and validation mAP against
iterations and against training minutes, in one PNG.

    python tools/analysis/plot_curves.py work_dirs/demo
    python tools/analysis/plot_curves.py work_dirs/demo --out curves.png \
        --keys loss loss_cls loss_bbox --metric coco/bbox_mAP_50

Reads what mmengine's ``LocalVisBackend`` writes,
``WORK_DIR/<timestamp>/vis_data/scalars.json`` (one JSON object a line:
training lines with ``iter``, ``lr``, ``time``, ``loss``, ``loss_*``;
validation lines with ``coco/bbox_mAP``... and ``step``). The argument may
also be one timestamped run folder, its ``vis_data`` folder or a
``scalars.json`` itself. (mmdet's ``analyze_logs.py`` is not in its pip
package.)

Several runs in a work_dir (an interrupted run and its ``--resume``) are
joined in time order; minutes are training minutes, from the logged
``time``; runs without a ``scalars.json`` (``tools/test.py`` runs) are left
out. How, in :mod:`shufflenet_det.utils.curves`.
"""
import argparse
import sys

from shufflenet_det.utils.cli import user_errors
from shufflenet_det.utils.curves import DEFAULT_METRIC, plot_work_dir, summary
from shufflenet_det.utils.logs import LogError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Plot loss and validation mAP of a work_dir against '
        'iterations and training minutes')
    parser.add_argument('path', metavar='WORK_DIR',
                        help='work_dir, one of its timestamped runs, or a '
                        'scalars.json')
    parser.add_argument('--out', help='PNG to write (default: '
                        'WORK_DIR/curves.png)')
    parser.add_argument('--keys', nargs='+', help='loss keys to plot '
                        '(default: loss and every loss_*)')
    parser.add_argument('--metric', default=DEFAULT_METRIC,
                        help='validation metric (default: %(default)s)')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        curves, files, out = plot_work_dir(args.path, args.out, args.keys,
                                           args.metric)
    except (LogError, OSError) as e:
        if args.debug:
            raise
        print(f'error: {e}', file=sys.stderr)
        sys.exit(1)
    except Exception:  # noqa: BLE001  (a bug: the project's one-line report)
        if args.debug:
            raise
        with user_errors():
            raise
    print(summary(curves, files, args.metric, out))
    return curves


if __name__ == '__main__':
    main()
