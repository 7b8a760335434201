# ImageNet-1k pretraining of the backbone of Table 7 cell mobilenetv2 500M:
# MobileNetV2Paper, widen_factor 1.4, which has no public ImageNet weights.
# mmpretrain's ShuffleNet V2 recipe; run with tools/pretrain.py (see
# _base_/imagenet_shufflenet_recipe.py). Result: the ImageNet checkpoint
# configs/table7/lighthead_mobilenetv2_500m.py loads,
# checkpoints/mobilenetv2_500m_imagenet.pth.
_base_ = ['./_base_/imagenet_shufflenet_recipe.py']
model = dict(
    backbone=dict(family='mobilenetv2', level='500M'),
    head=dict(in_channels=1792))  # the cell's C5 channels (table7.py)
