# Table 7 cell: Light-Head R-CNN, ShuffleNet v2* at the 140 MFLOPs level
# (ShuffleNetV2Star, widen_factor 1.0). Paper: 29.6 mmAP, 138 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='shufflenetv2star',
        level='140M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/shufflenetv2star_140m_imagenet.pth')))
