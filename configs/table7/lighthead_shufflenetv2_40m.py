# Table 7 cell: Light-Head R-CNN, ShuffleNet v2 at the 40 MFLOPs level
# (ShuffleNetV2, widen_factor 0.5). Paper: 22.5 mmAP, 188 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='shufflenetv2',
        level='40M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/shufflenetv2_40m_imagenet.pth')))
