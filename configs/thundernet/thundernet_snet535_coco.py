# ThunderNet with SNet535 on COCO at 320x320 (paper: 28.1 AP on test-dev).
# The backbone starts from checkpoints/snet535_imagenet.pth, written by
# tools/pretrain.py configs/pretrain/snet/snet535_16xb64_in1k.py.
_base_ = ['./_base_/thundernet_coco.py']
model = dict(
    backbone=dict(
        arch=535,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/snet535_imagenet.pth')),
    neck=dict(in_channels=[496, 992]))
