# A Table 7 cell's ImageNet pretraining in miniature: the backbone learns to
# classify the objects (and object-free clutter) cut out of a shapes set of
# its own (data/shapes_rc_pre, seed 1: another set than the detection one,
# as ImageNet is not COCO), colour not giving the class. Top-1 on the
# held-out crops (its val split) is evaluated at the end.
# `python tools/table7.py --embedded` sets the cell (backbone family/level,
# the head's in_channels) and the data_preprocessor of the cell's detection
# config, so that the weights learn on the input they will be fine-tuned on
# (checkpoints/README.md); as it stands, the config is the V2* 40M cell.
_base_ = ['../../pretrain/_base_/imagenet_shufflenet_recipe.py']

classes = ['background', 'circle', 'cross', 'rectangle', 'star', 'triangle']
data_root = 'data/shapes_rc_pre_crops'
data_preprocessor = dict(num_classes=len(classes))
model = dict(
    backbone=dict(family='shufflenetv2star', level='40M'),
    head=dict(num_classes=len(classes), in_channels=1024, topk=(1, )))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.6, 1.0),
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), backend='pillow'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    _delete_=True, batch_size=64, num_workers=1, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root,
                 data_prefix='train', classes=classes,
                 pipeline=train_pipeline))
val_dataloader = dict(
    _delete_=True, batch_size=64, num_workers=1,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root,
                 data_prefix='val', classes=classes, pipeline=val_pipeline))
val_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, ))
val_cfg = dict(_delete_=True, type='ValLoop')
test_dataloader = None
test_cfg = None
test_evaluator = None
# AdamW with cosine decay, as the demo's crops pretraining; long enough that
# the held-out top-1 stops rising (docs/table7_embedded.md).
max_iters = 3000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                 max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(
    _delete_=True,
    optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100,
         end=max_iters, eta_min=1e-5)
]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=1000, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
