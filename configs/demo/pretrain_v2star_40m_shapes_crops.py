# The embedded demo's ImageNet pretraining in miniature: the detector's
# backbone (ShuffleNet V2*, 40M level) learns to classify the objects (and
# object-free clutter) cut out of the shapes training split
# (tools/data/make_shapes_crops.py), then configs/demo/
# lighthead_v2star_shapes_pretrained.py starts from it, as a Table 7 cell
# starts from its ImageNet checkpoint. `make demo-pretrained` runs it
# (docs/demo.md).
_base_ = ['../pretrain/shufflenetv2star_40m_16xb64_in1k.py']

classes = ['background', 'circle', 'cross', 'rectangle', 'star', 'triangle']
data_root = 'data/shapes_crops'
data_preprocessor = dict(num_classes=len(classes))
model = dict(head=dict(num_classes=len(classes), topk=(1, )))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.6, 1.0),
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    _delete_=True, batch_size=64, num_workers=1, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root,
                 data_prefix='train', classes=classes,
                 pipeline=train_pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
# About 2 minutes on 2 CPU cores; AdamW, as the demo's detector.
max_iters = 400
train_cfg = dict(_delete_=True, type='ResumableIterBasedTrainLoop',
                 max_iters=max_iters)
optim_wrapper = dict(
    _delete_=True,
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0,
         end=40),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=40,
         end=max_iters, eta_min=1e-5)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
