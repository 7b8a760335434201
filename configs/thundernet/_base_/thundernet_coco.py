# ThunderNet (Qin et al., ICCV 2019) on COCO at 320x320: what the three SNet
# configs share (each sets the backbone's arch, the CEM's input channels and
# the ImageNet checkpoint). Sources: the paper (Sec. 3 for the modules,
# Sec. 4 for the training) and the official code, qinzheng93/ThunderNet
# config/ThunderNet.py ("official" below). Compare with mmdet's
# faster-rcnn_r50-caffe-c4.py: the RPN and the R-CNN both read one 245-channel
# map (the CEM's), the R-CNN re-weighted by SAM, pooled by PSRoIAlign to
# 5 x 7 x 7, with one 1024-d fc.
_base_ = [
    '../../_base_/datasets/coco_detection.py',
    '../../_base_/default_runtime.py'
]
custom_imports = dict(imports=['shufflenet_det'], allow_failed_imports=False)

model = dict(
    type='ThunderNet',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # ImageNet statistics, RGB (official Normalize; the SNet pretraining).
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    # BN trained, nothing frozen (official: plain BatchNorm2d, no freezing).
    # The paper trains with cross-GPU BN over its 4 GPUs: set
    # norm_cfg=dict(type='SyncBN') for a multi-GPU run.
    backbone=dict(type='SNet', arch=146, out_indices=None, frozen_stages=-1,
                  norm_eval=False),
    # C4, upsampled C5 and the global pool of C5, each 1x1 to 245, summed.
    neck=dict(type='ContextEnhancementModule', in_channels=[264, 528],
              out_channels=245),
    rpn_head=dict(
        # 5x5 depthwise + 1x1 (256) conv (paper Sec. 3.2).
        type='CompactRPNHead',
        in_channels=245,
        feat_channels=256,
        # 25 anchors: 32..512 px (2..32 x stride 16) x 1:2, 3:4, 1:1, 4:3,
        # 2:1 (paper Sec. 3.2; official anchor_generator).
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[2, 4, 8, 16, 32],
            ratios=[0.5, 0.75, 1.0, 4 / 3, 2.0],
            strides=[16]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),  # official
    # F_SAM = F_CEM * sigmoid(BN(conv1x1(F_RPN))) (paper Sec. 3.2; official).
    sam=dict(type='SpatialAttentionModule', in_channels=256,
             out_channels=245),
    roi_head=dict(
        type='StandardRoIHead',
        # The official PSROIAlign kernel (thundernet/PSROIAlign) takes the
        # max of each bin's 2 x 2 samples with no half-pixel offset, as
        # Light-Head's PSAlign: pool_mode='max'.
        bbox_roi_extractor=dict(
            type='PSRoIAlignExtractor',
            output_size=7,
            sampling_ratio=2,
            out_channels=5,
            featmap_strides=[16],
            pool_mode='max'),
        # One fc of 1024 (paper Sec. 3.2); the official Shared2FCBBoxHead
        # has two: we follow the paper.
        bbox_head=dict(
            type='ConvFCBBoxHead',
            num_shared_convs=0,
            num_shared_fcs=1,
            in_channels=5,
            roi_feat_size=7,
            fc_out_channels=1024,
            num_classes=80,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))),  # official
    # Assigners, samplers and proposal counts: official.
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=256,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=2000,
            max_per_img=1000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=False,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=512,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        # 200 proposals an image at test (official test_cfg.rpn).
        rpn=dict(
            nms_pre=2000,
            max_per_img=200,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        # Soft-NMS (official test_cfg.rcnn).
        rcnn=dict(
            score_thr=0.05,
            nms=dict(type='soft_nms', iou_threshold=0.5),
            max_per_img=100)))

# Not yet checked against the paper's text (no copy was at hand): the
# figures below credited to 'paper Sec. 4' (sizes, batch, schedule).
# Data: square inputs, aspect ratio not kept (official keep_ratio=False).
# Training sizes {240, 320, 480} (paper Sec. 4; the official config uses
# 360 for 320: we follow the paper). The SSD-style photometric distortion,
# zoom-out and min-IoU crop are the official pipeline's (the paper does not
# list its augmentations).
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFileOrSkip',
         color_type='color_ignore_orientation', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PhotoMetricDistortion', brightness_delta=32,
         contrast_range=(0.5, 1.5), saturation_range=(0.5, 1.5),
         hue_delta=18),
    dict(type='Expand', mean=[123.675, 116.28, 103.53], to_rgb=True,
         ratio_range=(1, 4)),
    dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3, 0.5, 0.7, 0.9),
         min_crop_size=0.3),
    dict(type='RandomChoiceResize', scales=[(240, 240), (320, 320),
                                            (480, 480)], keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation',
         backend_args=backend_args),
    dict(type='Resize', scale=(320, 320), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
# 16 images per GPU on 4 GPUs: 64 an iteration (paper Sec. 4; official: 64
# on one GPU). Square inputs: no aspect-ratio grouping.
train_dataloader = dict(
    batch_size=16, num_workers=4, batch_sampler=None,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# Schedule (paper Sec. 4, COCO): 375K iterations of 64 images, SGD lr 0.01,
# momentum 0.9, weight decay 1e-4, lr x0.1 at 50% and 75% of the
# iterations; the official config runs 80 epochs of train2017 x 5 (about
# 730K iterations of 64) with the same steps (40, 60 of 80): we follow the
# paper. Warm-up: official (500 iterations, linear from lr x 0.001).
max_iters = 375000
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters,
                 val_interval=25000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[max_iters // 2, max_iters * 3 // 4], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
# 64 images an iteration; --auto-scale-lr scales lr to another batch.
auto_scale_lr = dict(enable=False, base_batch_size=64)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=25000,
                    max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
