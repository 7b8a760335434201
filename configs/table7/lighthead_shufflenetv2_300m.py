# Table 7 cell: Light-Head R-CNN, ShuffleNet v2 at the 300 MFLOPs level
# (ShuffleNetV2, widen_factor 1.5). Paper: 31.8 mmAP, 109 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='shufflenetv2',
        level='300M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/shufflenetv2_300m_imagenet.pth')))
