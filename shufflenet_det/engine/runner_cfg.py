"""The configs that ``tools/train.py``, ``tools/test.py`` and
``tools/pretrain.py`` give mmengine's Runner, built from their options as
mmdet's tools/train.py and tools/test.py build them, plus the project's
checks and its exact resume.
"""
import atexit
import importlib
import logging
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.dist import barrier, is_distributed
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..utils.checkpoint import find_resumable_checkpoint
from ..utils.cli import ConfigError
from .preemption import parse_signal
from .resumable import resumable_train_cfg


def preempt_signals(extra=()):
    """SIGTERM and the ``extra`` ones (``--preempt-signal``); a bad name
    exits with one line and status 1."""
    try:
        return ['SIGTERM'] + [parse_signal(s).name for s in extra]
    except ValueError as e:
        raise SystemExit(f'error: {e}') from None


def load_config(config, cfg_options=None, launcher='none', work_dir=None):
    """The config file with ``--cfg-options`` merged, the launcher set, and
    work_dir from: the command line > the config > ./work_dirs/<config>."""
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(config))[0])
    return cfg


def train_config(config, cfg_options=None, launcher='none', work_dir=None,
                 amp=False, auto_scale_lr=False, resume=None):
    """The training config. ``resume``: None, ``'auto'`` (the newest
    complete checkpoint of the work_dir) or a checkpoint path."""
    cfg = load_config(config, cfg_options, launcher, work_dir)
    if amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in the config.',
                      logger='current', level=logging.WARNING)
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise SystemExit(
                f'{config}: --auto-scale-lr needs '
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

    if resume == 'auto':
        # The newest complete checkpoint of the work_dir (mmengine would
        # trust `last_checkpoint` even when a kill left it empty).
        cfg.resume = True
        cfg.load_from = find_resumable_checkpoint(cfg.work_dir)
        if cfg.load_from is None:
            print_log(f'--resume: no checkpoint in {cfg.work_dir}, starting '
                      'from the beginning.', logger='current')
            cfg.resume = False
    elif resume is not None:
        cfg.resume = True
        cfg.load_from = resume
    return cfg


def evaluation_config(config, checkpoint, cfg_options=None, launcher='none',
                      work_dir=None, show_dir=None, score_thr=0.3, out=None):
    """The evaluation config: ``checkpoint`` loaded, detections drawn in
    ``show_dir`` above ``score_thr``, predictions dumped to ``out``."""
    cfg = load_config(config, cfg_options, launcher, work_dir)
    cfg.load_from = checkpoint

    if show_dir:
        vis = cfg.default_hooks.get('visualization')
        if vis is None:
            raise SystemExit(
                f'{config}: --show-dir needs a `visualization` entry in '
                'default_hooks (mmdet\'s DetVisualizationHook).')
        vis.draw = True
        vis.test_out_dir = show_dir
        vis.score_thr = score_thr

    if out is not None:
        if not out.endswith(('.pkl', '.pickle')):
            raise SystemExit(f'--out {out}: the file must end in .pkl')
        evaluators = cfg.test_evaluator
        if not isinstance(evaluators, list):
            evaluators = [evaluators]
        cfg.test_evaluator = evaluators + [
            dict(type='DumpDetResults', out_file_path=out)]
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


def build_runner(cfg):
    """The config's ``runner_type``, else mmengine's Runner (as mmdet's
    tools)."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def end_distributed(status=0):
    """End a distributed run's process after an orderly end of its process
    group; nothing outside one.

    Left to the interpreter's exit, gloo's threads are torn down by C++
    destructors, and a rank of a run that had finished has aborted there
    ("terminate called without an active exception", SIGABRT: torchrun then
    calls the run failed). So: a barrier, the group destroyed, Python's exit
    handlers run (multiprocessing ends its data-loader workers, logging
    flushes), and the process ends with ``status`` without the C++ ones."""
    if not is_distributed():
        return
    barrier()
    torch.distributed.destroy_process_group()
    atexit._run_exitfuncs()  # logging's shutdown among them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def check_mmpretrain():
    """Pretraining builds mmpretrain's ImageClassifier: say how to install
    it before anything else runs."""
    try:
        importlib.import_module('mmpretrain')
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


def pretrained_backbone_path(cfg):
    """Where a Table 7 cell's detection config expects the backbone that
    ``cfg`` pretrains, or None (not a Table 7 backbone)."""
    backbone = cfg.model.get('backbone', {})
    family, level = backbone.get('family'), backbone.get('level')
    if not family or not level:
        return None
    return f'checkpoints/{family}_{str(level).lower()}_imagenet.pth'
