# Table 7 cell: Light-Head R-CNN, ShuffleNet v2* at the 300 MFLOPs level
# (ShuffleNetV2Star, widen_factor 1.5). Paper: 32.2 mmAP, 105 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='shufflenetv2star',
        level='300M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/shufflenetv2star_300m_imagenet.pth')))
