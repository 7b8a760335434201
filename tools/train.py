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
import logging
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.dist import barrier, is_distributed  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import shufflenet_det  # noqa: E402,F401  (registers the project's modules)
from shufflenet_det.datasets.coco_checks import check_dataloaders  # noqa: E402
from shufflenet_det.datasets.loading import (  # noqa: E402
    UNREADABLE_IMAGES_ENV, unreadable_record_path)
from shufflenet_det.engine.preemption import (  # noqa: E402
    install_preemption_handler, parse_signal)
from shufflenet_det.engine.resumable import resumable_train_cfg  # noqa: E402
from shufflenet_det.utils.checkpoint import find_resumable_checkpoint  # noqa: E402
from shufflenet_det.utils.cli import check_pretrained, user_errors  # noqa: E402
from shufflenet_det.utils.device import check_device  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true',
        help='enable automatic mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by the actual total batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or with no value from the '
        'latest checkpoint in the work_dir')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs, e.g. '
        'train_cfg.max_epochs=2 "model.backbone.frozen_stages=-1"')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
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
    add_preempt_argument(parser)
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def add_preempt_argument(parser):
    parser.add_argument(
        '--preempt-signal', action='append', default=[], metavar='SIG',
        help='also treat this signal (e.g. USR1, for slurm\'s --signal) as '
        'SIGTERM is: finish the iteration, save a checkpoint, exit with '
        'status 124; repeatable')


def preempt_signals(args):
    """SIGTERM and the --preempt-signal ones (a bad name: one line, exit 1)."""
    try:
        return ['SIGTERM'] + [parse_signal(s).name
                              for s in args.preempt_signal]
    except ValueError as e:
        raise SystemExit(f'error: {e}') from None


def build_config(args):
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir: command line > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in the config.',
                      logger='current', level=logging.WARNING)
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise SystemExit(
                f'{args.config}: --auto-scale-lr needs '
                '`auto_scale_lr = dict(base_batch_size=...)` in the config.')
        cfg.auto_scale_lr.enable = True

    # mmengine's loops resume at the start of an epoch and let the data
    # workers' random state depend on when they started: swap them for the
    # project's, which continue exactly (shufflenet_det.engine.resumable).
    if cfg.get('train_cfg'):
        cfg.train_cfg, exact = resumable_train_cfg(cfg.train_cfg)
        if not exact:
            print_log(
                f'train_cfg.type={cfg.train_cfg.get("type")!r}: a custom '
                'loop; --resume continues where that loop can, and a '
                'pre-emption signal is not handled (use '
                'ResumableEpochBasedTrainLoop / ResumableIterBasedTrainLoop '
                'for both).', logger='current', level=logging.WARNING)

    if args.resume == 'auto':
        # The newest complete checkpoint of the work_dir (mmengine would
        # trust `last_checkpoint` even when a kill left it empty).
        cfg.resume = True
        cfg.load_from = find_resumable_checkpoint(cfg.work_dir)
        if cfg.load_from is None:
            print_log(f'--resume: no checkpoint in {cfg.work_dir}, starting '
                      'from the beginning.', logger='current')
            cfg.resume = False
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def setup_cpu_distributed(cfg):
    """mmengine's pytorch launcher assumes CUDA (``torch.cuda.set_device``,
    DDP ``device_ids``). Without GPUs, start a gloo process group here (the
    Runner then finds it initialised) and wrap the model without device
    ids, so ``tools/dist_train.sh`` also runs on CPU."""
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def main(argv=None):
    args = parse_args(argv)
    # Before the Runner starts data-loader workers, which inherit it.
    install_preemption_handler(preempt_signals(args))
    check_device()  # mmcv's ops must run on the Runner's device
    with user_errors(args.debug, log_dir=args.work_dir):
        cfg = build_config(args)
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
        if 'runner_type' in cfg:
            runner = RUNNERS.build(cfg)
        else:
            runner = Runner.from_cfg(cfg)
        runner.train()
    # An orderly end for the process group: left to interpreter exit, a
    # gloo rank can abort ("terminate called without an active exception").
    if is_distributed():
        barrier()
        torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main()
