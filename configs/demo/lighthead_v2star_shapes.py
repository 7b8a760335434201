# The embedded demo: configs/lighthead_v2star.py trained from scratch on the
# generated shapes dataset (tools/data/make_shapes.py), on CPU, in minutes.
# Only the dataset, the image scale, the schedule and the initialisation
# change; the detector is the 800x1200 COCO one.
_base_ = ['../lighthead_v2star.py']

# Dataset: data/shapes, its five classes (shufflenet_det.datasets.shapes).
data_root = 'data/shapes/'
metainfo = dict(
    classes=('circle', 'rectangle', 'triangle', 'star', 'cross'),
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 180, 0),
             (145, 30, 180)])
# Image scale: the ~320-416 px images enlarged to at most 576x480, so the
# smallest objects (12 px) are closer to the smallest anchor (32 px).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(576, 480), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(576, 480), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    batch_sampler=None,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

# From scratch: no ImageNet weights, and nothing frozen.
model = dict(
    backbone=dict(frozen_stages=-1, norm_eval=False, init_cfg=None),
    roi_head=dict(bbox_head=dict(num_classes=5)))

# Schedule: a short CPU run (about 12 minutes on 2 cores); evaluated once,
# at the end. lr 0.02 for 4 images: higher than the linear scaling of the
# COCO schedule's 0.01 for 16, as training from scratch with BN allows.
max_epochs = 5
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[4], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.02))
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=2, max_keep_ckpts=2))
log_processor = dict(window_size=10)
