# Table 7 cell: Light-Head R-CNN, Xception at the 140 MFLOPs level
# (LightXception, widen_factor 1.0). Paper: 29.0 mmAP, 131 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='xception',
        level='140M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/xception_140m_imagenet.pth')))
