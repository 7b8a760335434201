# Table 7 cell: Light-Head R-CNN, Xception at the 500 MFLOPs level
# (LightXception, widen_factor 2.0). Paper: 32.9 mmAP, 83 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='xception',
        level='500M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/xception_500m_imagenet.pth')))
