# ImageNet-1k pretraining of the backbone of Table 7 cell mobilenetv2 40M:
# MobileNetV2Paper, widen_factor 0.15, divisor 10, which has no public ImageNet weights.
# mmpretrain's ShuffleNet V2 recipe; run with tools/pretrain.py (see
# _base_/imagenet_shufflenet_recipe.py). Result: the ImageNet checkpoint
# configs/table7/lighthead_mobilenetv2_40m.py loads,
# checkpoints/mobilenetv2_40m_imagenet.pth.
_base_ = ['./_base_/imagenet_shufflenet_recipe.py']
model = dict(
    backbone=dict(family='mobilenetv2', level='40M'),
    head=dict(in_channels=1280))  # the cell's C5 channels (table7.py)
