# Light-Head R-CNN, small setting (Li et al. 2017, Sec. 4; official code
# zengarden/light_head_rcnn), the detector of ShuffleNet V2's Table 7.
# Compare with mmdet's faster-rcnn_r50-caffe-c4.py: the RPN reads C4 as
# there, but the R-CNN head reads a 490-channel "thin" map made from C5 by
# a large separable conv, pools it with PSRoIAlign and has one 2048-d fc.
custom_imports = dict(imports=['shufflenet_det'], allow_failed_imports=False)

model = dict(
    type='LightHeadRCNN',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # ImageNet statistics, RGB (the backbones' pretraining).
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    # Any backbone whose out_indices give (C4 stride 16, C5 stride 32).
    # BN frozen and the stem + first stage frozen, as the official code.
    backbone=dict(
        type='ShuffleNetV2',
        widen_factor=1.0,
        out_indices=(1, 3),
        frozen_stages=1,
        norm_eval=True,
        init_cfg=None),
    # Large separable conv: k=15, C_mid=64 (small setting), 10 x 7 x 7 out.
    thin_map=dict(
        type='LargeSeparableConv',
        in_channels=None,  # from the backbone
        mid_channels=64,
        out_channels=490,
        kernel_size=15),
    rpn_head=dict(
        # mmdet's RPNHead, with an NMS that stops at max_per_img (same
        # proposals, a fraction of the CPU time: EarlyStopRPNHead's docstring).
        type='EarlyStopRPNHead',
        in_channels=None,  # from the backbone
        feat_channels=256,  # 256 in the small setting (512 in the large)
        # 15 anchors: 32..512 px (2..32 x stride 16), ratios 0.5/1/2.
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[2, 4, 8, 16, 32],
            ratios=[0.5, 1.0, 2.0],
            strides=[16]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        # Smooth L1 with sigma 3 as the official code (beta = 1 / sigma^2).
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0,
                       loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        # The official PSAlign: max of the 2 x 2 samples of each bin, no
        # half-pixel offset, zero outside the map (PSRoIAlignExtractor).
        bbox_roi_extractor=dict(
            type='PSRoIAlignExtractor',
            output_size=7,
            sampling_ratio=2,
            out_channels=10,
            featmap_strides=[32],
            pool_mode='max'),
        # The R-CNN subnet: one fc 2048 + ReLU, then the class and box fcs.
        bbox_head=dict(
            type='ConvFCBBoxHead',
            num_shared_convs=0,
            num_shared_fcs=1,
            in_channels=10,
            roi_feat_size=7,
            fc_out_channels=2048,
            num_classes=80,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            # Smooth L1 (sigma 1) weighted x2, as the official code.
            loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=2.0))),
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
            # Anchors crossing the image border are not labelled
            # (_allowed_border = 0 in the official anchor target layer).
            allowed_border=0,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=12000,
            max_per_img=2000,
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
            # OHEM over all proposals + GT: the 256 RoIs per image with the
            # highest loss, fg and bg ranked together (HardestRoISampler's
            # docstring says why mmdet's OHEMSampler does not fit).
            sampler=dict(
                type='HardestRoISampler', num=256, add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=6000,
            max_per_img=1000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        # Every box scored above 0 goes to the class-wise NMS, as the official
        # test (test_cls_threshold = 0.00).
        rcnn=dict(
            score_thr=0.0,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=100)))
