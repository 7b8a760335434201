# Table 7 cell: Light-Head R-CNN, ShuffleNet v1 at the 140 MFLOPs level
# (ShuffleNetV1, widen_factor 1.0). Paper: 27.0 mmAP, 85 images/s
# (GTX 1080 Ti, batch 4). The cell's backbone comes from shufflenet_det.table7;
# the RPN and thin-map input channels are read from it.
_base_ = [
    '../_base_/models/lighthead_rcnn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_lighthead_150k.py'
]
model = dict(
    # The input of the official V1 ImageNet weights (megvii ShuffleNet-Series
    # ShuffleNetV1/train.py, ToBGRTensor): BGR in 0-255, no mean/std
    # (checkpoints/README.md; LightHeadRCNN stops when they disagree).
    data_preprocessor=dict(mean=[0., 0., 0.], std=[1., 1., 1.],
                           bgr_to_rgb=False),
    backbone=dict(
        _delete_=True,
        type='Table7Backbone',
        family='shufflenetv1',
        level='140M',
        frozen_stages=1,
        # BN frozen as the official code (bn_training = False): statistics
        # (norm_eval) and affine parameters (requires_grad=False).
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/shufflenetv1_140m_imagenet.pth')))
