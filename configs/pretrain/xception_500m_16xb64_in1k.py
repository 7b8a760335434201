# ImageNet-1k pretraining of the backbone of Table 7 cell xception 500M:
# LightXception, widen_factor 2.0, which has no public ImageNet weights.
# mmpretrain's ShuffleNet V2 recipe; run with tools/pretrain.py (see
# _base_/imagenet_shufflenet_recipe.py). Result: the ImageNet checkpoint
# configs/table7/lighthead_xception_500m.py loads,
# checkpoints/xception_500m_imagenet.pth.
_base_ = ['./_base_/imagenet_shufflenet_recipe.py']
model = dict(
    backbone=dict(family='xception', level='500M'),
    head=dict(in_channels=1152))  # the cell's C5 channels (table7.py)
