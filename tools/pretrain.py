"""Pretrain a Table 7 cell's backbone on ImageNet: mmpretrain's
ImageClassifier with the cell's backbone, run by mmengine's Runner
(mmpretrain's tools/train.py, with tools/train.py's error handling, resume
and atomic checkpoints). Needs mmpretrain: ``pip install -e .[pretrain]``
(``make setup`` installs it).

    python tools/pretrain.py configs/pretrain/shufflenetv2star_140m_*.py
    python tools/pretrain.py CONFIG --work-dir work_dirs/x --amp --resume
    bash tools/dist_pretrain.sh CONFIG 16
    GPUS=16 bash tools/slurm_pretrain.sh PARTITION JOB CONFIG WORK_DIR

Pre-emption (SIGTERM, --preempt-signal) and exact --resume: as
tools/train.py.

The last checkpoint's ``backbone.*`` weights are what the cell's detection
config loads: copy it to checkpoints/<family>_<level>_imagenet.pth (the end
of the run prints the command).
"""
import argparse

from shufflenet_det.engine.preemption import install_preemption_handler
from shufflenet_det.engine.runner_cfg import (build_runner, check_imagenet,
                                              check_mmpretrain,
                                              end_distributed,
                                              preempt_signals,
                                              pretrained_backbone_path,
                                              setup_cpu_distributed,
                                              train_config)
from shufflenet_det.utils.checkpoint import find_resumable_checkpoint
from shufflenet_det.utils.cli import (add_runner_args, add_training_args,
                                      parse_runner_args, user_errors)


def parse_args(argv=None):
    """tools/train.py's options, less its detection data checks."""
    parser = argparse.ArgumentParser(
        description='Pretrain a backbone on ImageNet (mmpretrain)')
    parser.add_argument('config', help='configs/pretrain/ config file path')
    add_training_args(parser)
    add_runner_args(
        parser, data_checks=False, preempt=True,
        cfg_example='train_dataloader.dataset.data_root=/data/imagenet')
    return parse_runner_args(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    install_preemption_handler(preempt_signals(args.preempt_signal))
    with user_errors(args.debug, log_dir=args.work_dir):
        check_mmpretrain()
        cfg = train_config(args.config, args.cfg_options, args.launcher,
                           args.work_dir, args.amp, args.auto_scale_lr,
                           args.resume)
        setup_cpu_distributed(cfg)
        check_imagenet(cfg)
        runner = build_runner(cfg)
        runner.train()
    last = find_resumable_checkpoint(cfg.work_dir)
    target = pretrained_backbone_path(cfg)
    if last and target and runner.rank == 0:
        print(f'\nPretrained: {last}. For the Table 7 cell: cp {last} '
              f'{target}')
    end_distributed()


if __name__ == '__main__':
    main()
