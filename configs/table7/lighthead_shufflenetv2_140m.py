# Table 7 cell: Light-Head R-CNN, ShuffleNet v2 at the 140 MFLOPs level
# (ShuffleNetV2, widen_factor 1.0). Paper: 29.0 mmAP, 146 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='shufflenetv2',
        level='140M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/shufflenetv2_140m_imagenet.pth')))
