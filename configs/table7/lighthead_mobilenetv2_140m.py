# Table 7 cell: Light-Head R-CNN, MobileNet v2 at the 140 MFLOPs level
# (MobileNetV2Paper, widen_factor 0.6). Paper: 24.4 mmAP, 111 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='mobilenetv2',
        level='140M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/mobilenetv2_140m_imagenet.pth')))
