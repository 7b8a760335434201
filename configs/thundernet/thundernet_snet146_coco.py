# ThunderNet with SNet146 on COCO at 320x320 (paper: 23.6 AP on test-dev,
# as the official README). The backbone starts from
# checkpoints/snet146_imagenet.pth, written by tools/pretrain.py
# configs/pretrain/snet/snet146_16xb64_in1k.py.
_base_ = ['./_base_/thundernet_coco.py']
model = dict(
    backbone=dict(
        arch=146,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/snet146_imagenet.pth')),
    neck=dict(in_channels=[264, 528]))
