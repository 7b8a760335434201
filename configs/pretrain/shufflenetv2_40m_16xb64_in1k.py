# ImageNet-1k pretraining of the backbone of Table 7 cell shufflenetv2 40M
# (ShuffleNetV2, widen_factor 0.5) with the recipe all 20 cells share, as the
# paper pretrained every backbone itself; the public weights (torchvision's)
# come from another recipe (checkpoints/README.md). mmpretrain's ShuffleNet
# V2 recipe, run with tools/pretrain.py
# (_base_/imagenet_shufflenet_recipe.py); the result goes to
# checkpoints/shufflenetv2_40m_imagenet.pth for
# configs/table7/lighthead_shufflenetv2_40m.py.
_base_ = ['./_base_/imagenet_shufflenet_recipe.py']
model = dict(
    backbone=dict(family='shufflenetv2', level='40M'),
    head=dict(in_channels=1024))  # the cell's C5 channels (table7.py)
