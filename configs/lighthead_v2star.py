# Light-Head R-CNN with ShuffleNet V2* 1x (the 140 MFLOPs cell of Table 7)
# on COCO 2017 at 800x1200:
#   python tools/train.py configs/lighthead_v2star.py
# needs COCO at data/coco/ and the ImageNet weights at
# checkpoints/shufflenetv2star_140m_imagenet.pth (docs/train_test.md,
# docs/pretrained.md).
_base_ = ['./table7/lighthead_shufflenetv2star_140m.py']
