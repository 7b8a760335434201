# Table 7 cell: Light-Head R-CNN, ShuffleNet v2* at the 40 MFLOPs level
# (ShuffleNetV2Star, widen_factor 0.5). Paper: 23.7 mmAP, 183 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='shufflenetv2star',
        level='40M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/shufflenetv2star_40m_imagenet.pth')))
