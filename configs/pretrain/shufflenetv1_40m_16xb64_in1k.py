# ImageNet-1k pretraining of the backbone of Table 7 cell shufflenetv1 40M
# (ShuffleNetV1, widen_factor 0.5, groups 3) with the recipe all 20 cells
# share, as the paper pretrained every backbone itself; the public weights
# (megvii's) come from another recipe (checkpoints/README.md). mmpretrain's
# ShuffleNet V2 recipe, run with tools/pretrain.py
# (_base_/imagenet_shufflenet_recipe.py); the result goes to
# checkpoints/shufflenetv1_40m_imagenet.pth for
# configs/table7/lighthead_shufflenetv1_40m.py.
# Trained on RGB with the ImageNet mean/std, not megvii's BGR 0-255: the cell
# then needs the ImageNet data_preprocessor (checkpoints/README.md).
_base_ = ['./_base_/imagenet_shufflenet_recipe.py']
model = dict(
    backbone=dict(family='shufflenetv1', level='40M'),
    head=dict(in_channels=480))  # the cell's C5 channels (table7.py)
