# `make demo-pretrained`: configs/demo/lighthead_v2star_shapes.py with its
# backbone pretrained on the shapes crops
# (configs/demo/pretrain_v2star_40m_shapes_crops.py), the ImageNet -> COCO
# pipeline of a Table 7 cell in miniature (docs/demo.md). make
# demo-pretrained writes the checkpoint below (see the Makefile).
_base_ = ['./lighthead_v2star_shapes.py']
model = dict(
    backbone=dict(init_cfg=dict(
        _delete_=True, type='Pretrained',
        checkpoint='checkpoints/shufflenetv2star_40m_shapes.pth')))
