# Table 7 cell: Light-Head R-CNN, ShuffleNet v2 at the 300 MFLOPs level
# (ShuffleNetV2, widen_factor 1.5). Paper: 31.8 mmAP, 109 images/s
# (GTX 1080 Ti, batch 4). The cell's backbone comes from shufflenet_det.table7;
# the RPN and thin-map input channels are read from it.
_base_ = [
    '../_base_/models/lighthead_rcnn.py',
    '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_lighthead_150k.py'
]
model = dict(
    backbone=dict(
        _delete_=True,
        type='Table7Backbone',
        family='shufflenetv2',
        level='300M',
        frozen_stages=1,
        # BN frozen as the official code (bn_training = False): statistics
        # (norm_eval) and affine parameters (requires_grad=False).
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/shufflenetv2_300m_imagenet.pth')))
