# Table 7 cell: Light-Head R-CNN, ShuffleNet v2 at the 500 MFLOPs level
# (ShuffleNetV2, widen_factor 2.0). Paper: 33.3 mmAP, 87 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='shufflenetv2',
        level='500M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/shufflenetv2_500m_imagenet.pth')))
