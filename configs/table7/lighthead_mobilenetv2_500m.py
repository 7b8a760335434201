# Table 7 cell: Light-Head R-CNN, MobileNet v2 at the 500 MFLOPs level
# (MobileNetV2Paper, widen_factor 1.4). Paper: 30.6 mmAP, 72 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='mobilenetv2',
        level='500M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/mobilenetv2_500m_imagenet.pth')))
