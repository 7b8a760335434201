"""tools/pretrain.py end to end on generated data: a tiny classification set
(crops of the shapes generator's objects, in mmpretrain's CustomDataset
layout), a few pretraining iterations of one cell, resumed; then the cell's
Table 7 detection config loads the checkpoint with no backbone key missing
and the pretrained weights."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from cli_helpers import ROOT, run_tool
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image

from mmdet.registry import MODELS
from shufflenet_det.datasets.shapes import CLASSES, make_image
from shufflenet_det.models.backbones.pretrained import (IMAGENET_RGB,
                                                       load_pretrained)

PRETRAIN = osp.join(ROOT, 'configs', 'pretrain',
                    'shufflenetv2star_40m_16xb64_in1k.py')
DETECTION = osp.join(ROOT, 'configs', 'table7',
                     'lighthead_shufflenetv2star_40m.py')


def make_crops(root, num_images=12, seed=0, margin=4):
    """Each object of the first ``num_images`` shapes images, cropped with
    ``margin`` pixels around its box, saved as ``root/train/<class>/*.png``
    (CustomDataset: one folder per class). Returns the number of crops."""
    count = 0
    for index in range(num_images):
        img, objects = make_image(seed, 'train', index)
        h, w = img.shape[:2]
        for k, obj in enumerate(objects):
            x, y, bw, bh = obj['bbox']
            crop = img[max(y - margin, 0):min(y + bh + margin, h),
                       max(x - margin, 0):min(x + bw + margin, w)]
            folder = root / 'train' / CLASSES[obj['label']]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(crop)).save(
                folder / f'{index:03d}_{k}.png')
            count += 1
    return count


def tiny_pretrain_config(tmp_path, data_root):
    """The cell's pretraining config on the crops: 64x64 inputs, batch 4,
    iteration-based, a checkpoint every 2 iterations, no validation."""
    text = f'''
_base_ = [{PRETRAIN!r}]
classes = {list(CLASSES)!r}
data_preprocessor = dict(num_classes={len(CLASSES)})
model = dict(head=dict(num_classes={len(CLASSES)}))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    _delete_=True, batch_size=4, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root={str(data_root)!r},
                 data_prefix='train', classes=classes, pipeline=pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=4)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
optim_wrapper = dict(optimizer=dict(lr=0.05))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2,
                                     max_keep_ckpts=10),
                     logger=dict(interval=1))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
'''
    path = tmp_path / 'tiny_pretrain.py'
    path.write_text(text)
    return str(path)


@pytest.fixture(scope='module')
def crops_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('crops')
    assert make_crops(root) >= 16
    assert {p.name for p in (root / 'train').iterdir()} == set(CLASSES)
    return root


def test_pretrain_resume_then_table7_config_loads_it(tmp_path, crops_root):
    config = tiny_pretrain_config(tmp_path, crops_root)
    work = tmp_path / 'work'

    proc = run_tool('tools/pretrain.py', config, '--work-dir', str(work),
                    '--cfg-options', 'train_cfg.max_iters=2')
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_2.pth']

    # --resume continues from iteration 2 of the same work_dir.
    proc = run_tool('tools/pretrain.py', config, '--work-dir', str(work),
                    '--resume')
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'resumed' in log.lower() or 'Resuming' in log
    assert sorted(p.name for p in work.glob('*.pth')) == [
        'iter_2.pth', 'iter_4.pth']
    ckpt = str(work / 'iter_4.pth')
    assert f'cp {ckpt} checkpoints/shufflenetv2star_40m_imagenet.pth' in log
    assert not list(work.glob('.*.tmp'))  # atomic writes left nothing behind

    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert state['meta']['iter'] == 4
    pretrained = {k[len('backbone.'):]: v
                  for k, v in state['state_dict'].items()
                  if k.startswith('backbone.')}

    # The cell's detection config, pointed at the checkpoint.
    cfg = Config.fromfile(DETECTION)
    cfg.model.backbone.init_cfg.checkpoint = ckpt
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MODELS.build(cfg.model)
    detector.init_weights()
    backbone = detector.backbone.state_dict()
    assert backbone.keys() == pretrained.keys()
    for key, value in backbone.items():
        assert torch.equal(value, pretrained[key]), key
    # Trained: the weights moved away from the initialisation.
    fresh = MODELS.build(dict(cfg.model.backbone, init_cfg=None)).state_dict()
    assert any(not torch.equal(fresh[k], v) for k, v in backbone.items()
               if v.is_floating_point())

    report = load_pretrained(MODELS.build(cfg.model.backbone), ckpt)
    assert report['missing'] == [] and report['unexpected'] == []
    # The run's own config (meta['cfg']) says which input the weights were
    # trained on; it is the one the detection config feeds (LightHeadRCNN
    # checks it: tests/models/test_backbones/test_pretrained_routes.py).
    trained_on = {k: report['input'][k] for k in IMAGENET_RGB}
    assert trained_on == dict(IMAGENET_RGB)


def test_pretrain_without_imagenet_stops_with_one_line(tmp_path):
    proc = run_tool('tools/pretrain.py', PRETRAIN, '--work-dir',
                    str(tmp_path / 'w'), '--cfg-options',
                    f'train_dataloader.dataset.data_root={tmp_path}/none')
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    assert f'{tmp_path}/none/train not found' in proc.stderr
    assert 'meta/train.txt' in proc.stderr


def test_pretrain_rejects_detection_only_options(tmp_path):
    proc = run_tool('tools/pretrain.py', PRETRAIN, '--skip-data-check')
    assert proc.returncode == 2 and 'unrecognized arguments' in proc.stderr


def test_dist_pretrain_two_cpu_processes(tmp_path, crops_root):
    config = tiny_pretrain_config(tmp_path, crops_root)
    work = tmp_path / 'dist'
    env = dict(os.environ, PORT='29537', PYTHON=sys.executable)
    proc = subprocess.run(
        ['bash', 'tools/dist_pretrain.sh', config, '2', '--work-dir',
         str(work), '--cfg-options', 'train_cfg.max_iters=2'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'Distributed training: True' in log
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_2.pth']
    assert log.count('Pretrained: ') == 1  # rank 0 only
