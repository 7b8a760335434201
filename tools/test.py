"""Evaluate a trained detector with mmengine's Runner (mmdet's tools/test.py,
with the project imported so its modules are registered).

    python tools/test.py CONFIG CHECKPOINT
    python tools/test.py CONFIG CHECKPOINT --show-dir vis --out results.pkl
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
"""
import argparse
import os.path as osp

from shufflenet_det.datasets.coco_checks import check_dataloaders
from shufflenet_det.engine.runner_cfg import (build_runner, end_distributed,
                                              evaluation_config)
from shufflenet_det.utils.cli import (add_runner_args, parse_runner_args,
                                      user_errors)
from shufflenet_det.utils.device import check_device


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a detector')
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
    add_runner_args(parser)
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    check_device()  # mmcv's ops must run on the Runner's device
    with user_errors(args.debug, log_dir=args.work_dir):
        cfg = evaluation_config(
            args.config, args.checkpoint, args.cfg_options, args.launcher,
            args.work_dir, args.show_dir, args.score_thr, args.out)
        if not osp.isfile(args.checkpoint):
            raise FileNotFoundError(
                f'checkpoint {args.checkpoint} not found (train one with '
                f'tools/train.py {args.config}).')
        if not args.skip_data_check:
            check_dataloaders(cfg, splits=('test', ),
                              check_images=args.check_images)
        runner = build_runner(cfg)
        metrics = runner.test()
    summarize(metrics, runner, args)
    end_distributed()
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
