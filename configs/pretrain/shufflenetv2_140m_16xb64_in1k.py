# ImageNet-1k pretraining of the backbone of Table 7 cell shufflenetv2 140M
# (ShuffleNetV2, widen_factor 1.0) with the recipe all 20 cells share, as the
# paper pretrained every backbone itself; the public weights (torchvision's)
# come from another recipe (checkpoints/README.md). mmpretrain's ShuffleNet
# V2 recipe, run with tools/pretrain.py
# (_base_/imagenet_shufflenet_recipe.py); the result goes to
# checkpoints/shufflenetv2_140m_imagenet.pth for
# configs/table7/lighthead_shufflenetv2_140m.py.
_base_ = ['./_base_/imagenet_shufflenet_recipe.py']
model = dict(
    backbone=dict(family='shufflenetv2', level='140M'),
    head=dict(in_channels=1024))  # the cell's C5 channels (table7.py)
