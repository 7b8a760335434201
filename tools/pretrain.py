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
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from mmengine.config import DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import shufflenet_det  # noqa: E402,F401  (registers the project's modules)
from shufflenet_det.utils.checkpoint import find_resumable_checkpoint  # noqa: E402
from shufflenet_det.utils.cli import ConfigError, user_errors  # noqa: E402
from shufflenet_det.engine.preemption import install_preemption_handler  # noqa: E402,E501
from train import (add_preempt_argument, build_config,  # noqa: E402
                   preempt_signals, setup_cpu_distributed)


def parse_args(argv=None):
    """tools/train.py's options, less its detection data checks."""
    parser = argparse.ArgumentParser(
        description='Pretrain a backbone on ImageNet (mmpretrain)')
    parser.add_argument('config', help='configs/pretrain/ config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true',
        help='enable automatic mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by the actual total batch size (the '
        'recipe\'s is 16 GPUs x 64 images)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or with no value from the '
        'latest complete checkpoint in the work_dir')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs, e.g. '
        'train_dataloader.dataset.data_root=/data/imagenet')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument(
        '--debug', action='store_true',
        help='show the full traceback of an error')
    add_preempt_argument(parser)
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def check_mmpretrain():
    try:
        import mmpretrain  # noqa: F401
    except ImportError as e:
        raise ConfigError(
            f'pretraining needs mmpretrain ({e}): install it with '
            '`pip install -e .[pretrain]` (or `make setup`).') from None


def check_imagenet(cfg):
    """Fail early, with the expected layout, when a dataset's folder is not
    there (mmpretrain's message would come after the model is built)."""
    for split in ('train_dataloader', 'val_dataloader'):
        loader = cfg.get(split)
        if not loader:
            continue
        dataset = loader['dataset']
        while 'dataset' in dataset and 'data_root' not in dataset:
            dataset = dataset['dataset']  # RepeatDataset and the like
        root = dataset.get('data_root') or ''
        prefix = dataset.get('data_prefix') or dataset.get('split') or ''
        if isinstance(prefix, dict):
            prefix = prefix.get('img_path', prefix.get('img', ''))
        folder = osp.join(root, prefix)
        if folder and not osp.isdir(folder):
            raise ConfigError(
                f'{split}: {folder} not found. Put ImageNet in mmpretrain\'s '
                f'layout under {root or "the data_root"} (train/, val/, '
                'meta/train.txt, meta/val.txt: docs/pretrained.md, "ImageNet '
                'pretraining"), or point the config there with --cfg-options '
                f'{split}.dataset.data_root=PATH.')


def table7_checkpoint(cfg):
    """Where the cell's detection config expects this backbone, or None."""
    backbone = cfg.model.get('backbone', {})
    family, level = backbone.get('family'), backbone.get('level')
    if not family or not level:
        return None
    return f'checkpoints/{family}_{str(level).lower()}_imagenet.pth'


def main(argv=None):
    args = parse_args(argv)
    install_preemption_handler(preempt_signals(args))
    with user_errors(args.debug, log_dir=args.work_dir):
        check_mmpretrain()
        cfg = build_config(args)
        setup_cpu_distributed(cfg)
        check_imagenet(cfg)
        if 'runner_type' in cfg:
            runner = RUNNERS.build(cfg)
        else:
            runner = Runner.from_cfg(cfg)
        runner.train()
    last = find_resumable_checkpoint(cfg.work_dir)
    target = table7_checkpoint(cfg)
    if last and target and runner.rank == 0:
        print(f'\nPretrained: {last}. For the Table 7 cell: cp {last} '
              f'{target}')


if __name__ == '__main__':
    main()
