# Table 7 cell: Light-Head R-CNN, ShuffleNet v1 at the 300 MFLOPs level
# (ShuffleNetV1, widen_factor 1.5). Paper: 29.9 mmAP, 76 images/s
# (GTX 1080 Ti, batch 4).
_base_ = ['./_base_/lighthead_table7_cell.py']
model = dict(
    backbone=dict(
        family='shufflenetv1',
        level='300M',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/shufflenetv1_300m_imagenet.pth')),
    # The official V1 weights' input (megvii ShuffleNetV1/train.py,
    # ToBGRTensor; checkpoints/README.md): BGR in 0-255, no mean/std.
    data_preprocessor=dict(mean=[0., 0., 0.], std=[1., 1., 1.],
                           bgr_to_rgb=False))
