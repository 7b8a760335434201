"""Evaluate a trained detector with mmengine's Runner (mmdet's tools/test.py,
with the project imported so its modules are registered).

    python tools/test.py CONFIG CHECKPOINT
    python tools/test.py CONFIG CHECKPOINT --show-dir vis --out results.pkl
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import shufflenet_det  # noqa: E402,F401  (registers the project's modules)
from shufflenet_det.datasets.coco_checks import check_dataloaders  # noqa: E402
from shufflenet_det.utils.cli import check_pretrained, user_errors  # noqa: E402
from shufflenet_det.utils.device import check_device  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument(
        '--out', help='dump predictions to a pickle file (.pkl) for offline '
        'evaluation')
    parser.add_argument(
        '--show-dir', help='directory (inside the work_dir\'s timestamped run '
        'folder) where pictures of the detections are saved')
    parser.add_argument(
        '--score-thr', type=float, default=0.3,
        help='score threshold of the drawn detections (with --show-dir)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument(
        '--skip-data-check', action='store_true',
        help='do not check the datasets\' files before starting')
    parser.add_argument(
        '--check-images', nargs='?', const='header',
        choices=['header', 'decode'],
        help='before starting, also read every image\'s header (format and '
        'size; the default) or decode every image, and stop listing the '
        'unreadable ones')
    parser.add_argument(
        '--debug', action='store_true',
        help='show the full traceback of an error')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args):
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint

    if args.show_dir:
        vis = cfg.default_hooks.get('visualization')
        if vis is None:
            raise SystemExit(
                f'{args.config}: --show-dir needs a `visualization` entry in '
                'default_hooks (mmdet\'s DetVisualizationHook).')
        vis.draw = True
        vis.test_out_dir = args.show_dir
        vis.score_thr = args.score_thr

    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise SystemExit(f'--out {args.out}: the file must end in .pkl')
        evaluators = cfg.test_evaluator
        if not isinstance(evaluators, list):
            evaluators = [evaluators]
        cfg.test_evaluator = evaluators + [
            dict(type='DumpDetResults', out_file_path=args.out)]
    return cfg


def main(argv=None):
    args = parse_args(argv)
    check_device()  # mmcv's ops must run on the Runner's device
    with user_errors(args.debug, log_dir=args.work_dir):
        cfg = build_config(args)
        if not osp.isfile(args.checkpoint):
            raise FileNotFoundError(
                f'checkpoint {args.checkpoint} not found (train one with '
                f'tools/train.py {args.config}).')
        if not args.skip_data_check:
            check_dataloaders(cfg, splits=('test', ),
                              check_images=args.check_images)
        if 'runner_type' in cfg:
            runner = RUNNERS.build(cfg)
        else:
            runner = Runner.from_cfg(cfg)
        metrics = runner.test()
    summarize(metrics, runner, args)
    return metrics


def summarize(metrics, runner, args):
    """The headline numbers, and where the pictures are."""
    if 'coco/bbox_mAP' in metrics:
        print('\nCOCO bbox mAP: {:.1f}  (AP50 {:.1f}, AP75 {:.1f}; small '
              '{:.1f}, medium {:.1f}, large {:.1f})'.format(*(
                  100 * metrics.get(f'coco/bbox_{k}', float('nan'))
                  for k in ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m',
                            'mAP_l'))))
    if args.show_dir:
        print('Detections drawn in '
              f'{osp.join(runner.log_dir, args.show_dir)}')


if __name__ == '__main__':
    main()
