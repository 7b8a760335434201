# What the 20 Table 7 cells share: the paper changes "only backbone
# networks" (ShuffleNet V2 Sec. 4.2), so every cell is Light-Head R-CNN on
# COCO with the same schedule and a Table7Backbone (shufflenet_det.table7),
# the cell setting its family, level and ImageNet checkpoint. The RPN and
# thin-map input channels are read from the backbone.
_base_ = [
    '../../_base_/models/lighthead_rcnn.py',
    '../../_base_/datasets/coco_detection.py',
    '../../_base_/schedules/schedule_lighthead_150k.py'
]
model = dict(
    backbone=dict(
        _delete_=True,
        type='Table7Backbone',
        frozen_stages=1,
        # BN frozen as the official code (bn_training = False): statistics
        # (norm_eval) and affine parameters (requires_grad=False).
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True))
