# ThunderNet with SNet49 on COCO at 320x320 (paper: 19.1 AP on COCO
# test-dev). SNet49's C5 is its 512-channel conv5 (paper Table 1); the
# backbone starts from checkpoints/snet49_imagenet.pth, written by
# tools/pretrain.py configs/pretrain/snet/snet49_16xb64_in1k.py.
_base_ = ['./_base_/thundernet_coco.py']
model = dict(
    backbone=dict(
        arch=49,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/snet49_imagenet.pth')),
    neck=dict(in_channels=[120, 512]))
