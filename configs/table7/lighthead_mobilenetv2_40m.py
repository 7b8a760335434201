# Table 7 cell: Light-Head R-CNN, MobileNet v2 at the 40 MFLOPs level
# (MobileNetV2Paper, widen_factor 0.15). Paper: 20.7 mmAP, 146 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='mobilenetv2',
        level='40M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/mobilenetv2_40m_imagenet.pth')))
