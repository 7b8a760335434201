# SNet49's ImageNet pretraining in miniature, the mini Table 7's route
# (configs/table7/embedded/pretrain_crops.py, shufflenet_det.table7.embedded):
# the backbone classifies the objects (and object-free clutter) cut out of
# data/shapes_rc_pre (another set than the detection one, colour not giving
# the class), top-1 on the held-out crops at the end. The input is the
# ImageNet RGB normalisation thundernet_snet49_shapes.py feeds. Data:
# `python tools/table7.py --embedded` generates it (or
# shufflenet_det.table7.embedded.make_data()); run with tools/pretrain.py and
# copy the last checkpoint to checkpoints/snet49_shapes_crops.pth
# (docs/thundernet.md).
_base_ = ['../table7/embedded/pretrain_crops.py']
model = dict(
    backbone=dict(_delete_=True, type='mmdet.SNet', arch=49,
                  out_indices=(3, )),
    head=dict(in_channels=512))  # SNet49's conv5
