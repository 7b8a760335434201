# ImageNet-1k pretraining of the backbone of Table 7 cell mobilenetv2 300M
# (MobileNetV2Paper, widen_factor 1.0, divisor 8) with the recipe all 20
# cells share, as the paper pretrained every backbone itself; the public
# weights (torchvision's) come from another recipe (checkpoints/README.md).
# mmpretrain's ShuffleNet V2 recipe, run with tools/pretrain.py
# (_base_/imagenet_shufflenet_recipe.py); the result goes to
# checkpoints/mobilenetv2_300m_imagenet.pth for
# configs/table7/lighthead_mobilenetv2_300m.py.
_base_ = ['./_base_/imagenet_shufflenet_recipe.py']
model = dict(
    backbone=dict(family='mobilenetv2', level='300M'),
    head=dict(in_channels=1280))  # the cell's C5 channels (table7.py)
