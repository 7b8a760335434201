# Table 7 cell: Light-Head R-CNN, Xception at the 40 MFLOPs level
# (LightXception, widen_factor 0.5). Paper: 21.9 mmAP, 178 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='xception',
        level='40M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/xception_40m_imagenet.pth')))
