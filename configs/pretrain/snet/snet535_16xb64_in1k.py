# ImageNet-1k pretraining of ThunderNet's SNet535 (paper Table 1) with the
# project's recipe (../_base_/imagenet_shufflenet_recipe.py: mmpretrain's
# ShuffleNet V2 recipe), run with tools/pretrain.py; the last checkpoint goes
# to checkpoints/snet535_imagenet.pth for
# configs/thundernet/thundernet_snet535_coco.py. The official SNet146
# (qinzheng93/ThunderNet snet-training/train.py) trained 300K iterations of
# 512 images, lr 0.5 decayed linearly, weight decay 4e-5, label smoothing
# 0.1: we keep the recipe all the project's backbones share.
_base_ = ['../_base_/imagenet_shufflenet_recipe.py']
model = dict(
    backbone=dict(_delete_=True, type='mmdet.SNet', arch=535,
                  out_indices=(2, )),
    head=dict(in_channels=992))  # SNet535's last feature (C5)
