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
# Image scale: the images as generated (320-416 x 240-352 px; make demo
# makes objects of 32 px and up, the anchors below start at 16 px).
# Images load as stored (EXIF orientation ignored, as the COCO configs:
# boxes refer to the stored pixels); an undecodable training image is
# skipped with a warning (shufflenet_det.datasets.loading).
train_pipeline = [
    dict(type='LoadImageFromFileOrSkip',
         color_type='color_ignore_orientation'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(416, 352), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='Resize', scale=(416, 352), keep_ratio=True),
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

# From scratch: no ImageNet weights, and nothing frozen. The 40M-level
# V2* (Table 7's smallest cell) and heads sized for this data:
# - thin map: BN on the large separable conv's sum before its ReLU.
#   Without it that ReLU dies from scratch (96% of the map exactly 0 after
#   600 iterations; LargeSeparableConv's docstring);
# - anchors 16-256 px (scales 1-16 x stride 16): the generator's objects
#   are 12 px and up by default (32 px in make demo's set), COCO's anchors
#   start at 32 px;
# - 2000 -> 500 proposals in training, 1000 -> 300 at test (images hold
#   at most 8 objects), and mmdet's random sampler (128 RoIs, 25%
#   positive) instead of OHEM: from scratch with OHEM, every positive RoI
#   of a training batch was still called background after 600 iterations
#   (OHEM's hardest RoIs are mostly near-misses).
model = dict(
    # The batch in channels-last memory: 7-8% faster on CPU (the stem's
    # conv and max-pool; LightHeadRCNN's docstring).
    channels_last=True,
    backbone=dict(level='40M', frozen_stages=-1, norm_eval=False,
                  norm_cfg=dict(type='BN', requires_grad=True),
                  init_cfg=None),
    thin_map=dict(norm_cfg=dict(type='BN')),
    rpn_head=dict(anchor_generator=dict(scales=[1, 2, 4, 8, 16])),
    roi_head=dict(bbox_head=dict(num_classes=5)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=2000, max_per_img=500),
        rcnn=dict(sampler=dict(
            _delete_=True, type='RandomSampler', num=128, pos_fraction=0.25,
            neg_pos_ub=-1, add_gt_as_proposals=True))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=300)))

# Schedule: 13 epochs of 144 iterations (make demo's 600 training images,
# the empty ones filtered): `time make demo` took 14 min 39 s on 2 cores
# (0.39-0.46 s per iteration; mAP 54.7), where the same recipe without
# channels_last, fused AdamW and the transposed 1 x 15 convs took 17 min
# 29 s in the same hour (this shared machine's speed varies by up to 30%
# from one hour to the next); evaluated at epochs 5, 10 and 13 (~7 s
# each), so that the curves show mAP rising.
# AdamW: from scratch, SGD (lr 0.02, momentum 0.9) did not fit 4 images in
# 200 iterations, AdamW (lr 1e-3) found all their objects in 120.
# Measured on make demo's data (COCO mAP on its 100 val images; README,
# "The embedded demo"):
#   lr 1e-3, 256 RoIs, 11 epochs              35.0
#   lr 2e-3, 256 RoIs, 14 epochs              54.8, 53.8
#   lr 2e-3, 256 RoIs, 13 epochs              51.9, 51.4
#   lr 2e-3, 128 RoIs, 13 epochs (this)       52.2 (x3); with the CPU
#                                             speed-ups 51.9, 54.7 (x3)
#   lr 3e-3, 256 RoIs, 11 epochs              45.3
#   lr 3e-3, 128 RoIs, 13 / 12 epochs         53.6 / 51.6 and 44.0
# lr 3e-3 is faster early but less stable (the same 12-epoch config: 51.6
# with 1 thread, 44.0 with 2). 128 RoIs per image instead of 256: 7% less
# time per iteration (PSRoIAlign and the 2048-d fc on half the RoIs).
max_epochs = 13
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[12], gamma=0.1)
]
# fused=True: one vectorised kernel for the whole AdamW step (6 ms a step
# here instead of 23 ms; same update).
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-3, weight_decay=1e-4,
                   fused=True))
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=2, max_keep_ckpts=2))
log_processor = dict(window_size=10)
# Seeded, so that make demo gives the same data order and initialisation
# on every run.
randomness = dict(seed=0)
