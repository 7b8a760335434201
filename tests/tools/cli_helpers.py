"""Shared by the tools tests: running the tools, a tiny training config."""
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(ROOT, 'configs', 'demo', 'lighthead_v2star_shapes.py')


def tiny_config(tmp_path, data_root, **extra):
    """A config file inheriting the demo: tiny images, the 40M backbone,
    iteration-based, deterministic, no random flip, no worker processes."""
    text = f'''
_base_ = [{DEMO!r}]
data_root = {str(data_root) + '/'!r}
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(160, 128), keep_ratio=True),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root=data_root, pipeline=pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
model = dict(backbone=dict(level='40M'))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=6,
                 val_interval=1000)
param_scheduler = [dict(type='ConstantLR', factor=1.0)]
optim_wrapper = dict(optimizer=dict(lr=0.01))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2,
                                     max_keep_ckpts=10),
                     logger=dict(interval=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0, deterministic=True)
'''
    for k, v in extra.items():
        text += f'{k} = {v!r}\n'
    path = tmp_path / 'tiny.py'
    path.write_text(text)
    return str(path)


def run_tool(*args, timeout=600):
    """Run a tool in a fresh interpreter; returns the CompletedProcess."""
    return subprocess.run([sys.executable, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
