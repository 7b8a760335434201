# Table 7 cell: Light-Head R-CNN, MobileNet v2 at the 300 MFLOPs level
# (MobileNetV2Paper, widen_factor 1.0). Paper: 30.0 mmAP, 94 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='mobilenetv2',
        level='300M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/mobilenetv2_300m_imagenet.pth')))
