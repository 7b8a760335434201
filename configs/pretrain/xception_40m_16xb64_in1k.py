# ImageNet-1k pretraining of the backbone of Table 7 cell xception 40M:
# LightXception, widen_factor 0.5, which has no public ImageNet weights.
# mmpretrain's ShuffleNet V2 recipe; run with tools/pretrain.py (see
# _base_/imagenet_shufflenet_recipe.py). Result: the ImageNet checkpoint
# configs/table7/lighthead_xception_40m.py loads,
# checkpoints/xception_40m_imagenet.pth.
_base_ = ['./_base_/imagenet_shufflenet_recipe.py']
model = dict(
    backbone=dict(family='xception', level='40M'),
    head=dict(in_channels=288))  # the cell's C5 channels (table7.py)
