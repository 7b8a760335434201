# ImageNet-1k pretraining of the project's backbones, with mmpretrain's
# ShuffleNet V2 recipe (mmpretrain 1.x configs/shufflenet_v2/
# shufflenet-v2-1x_16xb64_in1k.py and its bases imagenet_bs64_pil_resize,
# imagenet_bs1024_linearlr_bn_nowd, default_runtime), written out here:
# 16 GPUs x 64 images; SGD lr 0.5, momentum 0.9, weight decay 4e-5 (none on
# BN); lr x0.1 for the first 5000 iterations, then poly decay to 0; 300
# epochs; train: RandomResizedCrop 224 + horizontal flip; test: short side
# 256, center crop 224 (pillow resizing). The bases are spelled out rather
# than inherited with "mmpretrain::", which needs pkg_resources (setuptools
# < 81). Needs mmpretrain 1.2.0 (`pip install -e .[pretrain]`); run with
# tools/pretrain.py. ImageNet's layout, the commands and where the last
# checkpoint goes: docs/pretrained.md.
default_scope = 'mmpretrain'
# Registers the backbones in mmdet's MODELS; mmpretrain's registry reaches
# them with the "mmdet." scope prefix.
custom_imports = dict(imports=['shufflenet_det'], allow_failed_imports=False)

# The cell (family, level) and the head's in_channels (the cell's C5
# channels) are set by each config; detection=False: the deepest feature.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='mmdet.Table7Backbone', detection=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=None,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))

# data
dataset_type = 'ImageNet'
data_root = 'data/imagenet'
data_preprocessor = dict(
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],  # RGB
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=5,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=64,
    num_workers=5,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# schedule
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.5, momentum=0.9, weight_decay=0.00004),
    paramwise_cfg=dict(norm_decay_mult=0))
param_scheduler = [
    dict(type='ConstantLR', factor=0.1, by_epoch=False, begin=0, end=5000),
    dict(type='PolyLR', eta_min=0, by_epoch=False, begin=5000)
]
# mmengine's epoch loop, resumable inside an epoch and on pre-emption with
# the same batches (shufflenet_det.engine.resumable).
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop', max_epochs=300, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=1024)

# runtime
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False))
# The random generators' states go into every checkpoint, so that --resume
# continues the same random stream (the project's hook, in mmdet's scope).
custom_hooks = [dict(type='mmdet.RNGStateHook')]
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)
