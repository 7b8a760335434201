# Table 7 cell: Light-Head R-CNN, ShuffleNet v2* at the 500 MFLOPs level
# (ShuffleNetV2Star, widen_factor 2.0). Paper: 34.2 mmAP, 83 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='shufflenetv2star',
        level='500M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/shufflenetv2star_500m_imagenet.pth')))
