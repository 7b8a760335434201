"""Train a detector with mmengine's Runner (mmdet's tools/train.py, with the
project imported so its modules are registered).

    python tools/train.py configs/lighthead_v2star.py
    python tools/train.py CONFIG --work-dir work_dirs/x --amp --resume
    python tools/train.py CONFIG --preempt-signal USR1    # slurm --signal
    bash tools/dist_train.sh CONFIG 8

On SIGTERM (and the --preempt-signal ones) training finishes the current
iteration, saves a complete checkpoint and exits with status 124
(PREEMPTED_EXIT_CODE); the same command with --resume continues with the
next batch, as if never stopped (docs/robustness.md).
"""
import argparse
import os

from shufflenet_det.datasets.coco_checks import check_dataloaders
from shufflenet_det.datasets.loading import (UNREADABLE_IMAGES_ENV,
                                             unreadable_record_path)
from shufflenet_det.engine.preemption import install_preemption_handler
from shufflenet_det.engine.runner_cfg import (build_runner, end_distributed,
                                              preempt_signals,
                                              setup_cpu_distributed,
                                              train_config)
from shufflenet_det.utils.cli import (add_runner_args, add_training_args,
                                      check_pretrained, parse_runner_args,
                                      user_errors)
from shufflenet_det.utils.device import check_device


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    add_training_args(parser)
    add_runner_args(
        parser, preempt=True, cfg_example='train_cfg.max_epochs=2 '
        '"model.backbone.frozen_stages=-1"')
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    # Before the Runner starts data-loader workers, which inherit it.
    install_preemption_handler(preempt_signals(args.preempt_signal))
    check_device()  # mmcv's ops must run on the Runner's device
    with user_errors(args.debug, log_dir=args.work_dir):
        cfg = train_config(args.config, args.cfg_options, args.launcher,
                           args.work_dir, args.amp, args.auto_scale_lr,
                           args.resume)
        setup_cpu_distributed(cfg)
        if not args.skip_data_check:
            check_dataloaders(cfg, splits=('train', 'val'),
                              check_images=args.check_images)
        if not cfg.resume:
            check_pretrained(cfg)
        # Where the data-loader workers record the images they skip
        # (LoadImageFromFileOrSkip); set before the Runner starts them.
        os.environ[UNREADABLE_IMAGES_ENV] = unreadable_record_path(
            cfg.work_dir)
        build_runner(cfg).train()
    end_distributed()


if __name__ == '__main__':
    main()
