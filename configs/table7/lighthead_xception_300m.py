# Table 7 cell: Light-Head R-CNN, Xception at the 300 MFLOPs level
# (LightXception, widen_factor 1.5). Paper: 31.3 mmAP, 101 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='xception',
        level='300M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/xception_300m_imagenet.pth')))
