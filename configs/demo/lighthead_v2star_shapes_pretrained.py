# The embedded demo as `make demo` runs it: configs/demo/
# lighthead_v2star_shapes.py with its backbone pretrained on the shapes
# crops (configs/demo/pretrain_v2star_40m_shapes_crops.py), the ImageNet ->
# COCO pipeline of a Table 7 cell in miniature. make demo writes the
# checkpoint below; by hand:
#   python tools/data/make_shapes_crops.py
#   python tools/pretrain.py configs/demo/pretrain_v2star_40m_shapes_crops.py \
#       --work-dir work_dirs/demo/pretrain
#   cp $(cat work_dirs/demo/pretrain/last_checkpoint) \
#       checkpoints/shufflenetv2star_40m_shapes.pth
_base_ = ['./lighthead_v2star_shapes.py']
model = dict(
    backbone=dict(init_cfg=dict(
        _delete_=True, type='Pretrained',
        checkpoint='checkpoints/shufflenetv2star_40m_shapes.pth')))
