"""Convert a torchvision MobileNet V2 ImageNet checkpoint to our layout.

    python tools/model_converters/torchvision2mobilenetv2.py \
        mobilenet_v2-b0353104.pth checkpoints/mobilenetv2_1x_tv.pth

The input is a ``torchvision.models.mobilenet_v2`` state dict (``features.N``,
``classifier``); an mmpretrain ``MobileNetV2`` checkpoint
(``backbone.layerN.B.conv.i``) is converted too. The output is in mmdet's
MobileNetV2 layout (``conv1``, ``layerN.B.expand_conv/depthwise_conv/
linear_conv``, ``conv2``) and loads into ``MobileNetV2Paper`` with the same
``widen_factor`` and ``divisor=8`` (torchvision's rounding) through
``init_cfg=dict(type='Pretrained', checkpoint=DST)``, or into mmdet's own
``MobileNetV2``. Converting first is optional: ``MobileNetV2Paper``
recognises and converts both layouts itself. The features are equal to
torchvision's ``model.features``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from shufflenet_det.models.backbones.mobilenet_v2 import \
    MOBILENET_V2_CONVERTERS  # noqa: E402
from shufflenet_det.models.backbones.pretrained import \
    convert_checkpoint  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('src', help='torchvision mobilenet_v2 checkpoint')
    p.add_argument('dst', help='where to save the converted checkpoint')
    args = p.parse_args(argv)
    try:
        layout, n = convert_checkpoint(args.src, args.dst,
                                       MOBILENET_V2_CONVERTERS)
    except ValueError as e:
        sys.exit(f'error: {e}')
    print(f'{args.src} ({layout}) -> {args.dst}: {n} tensors')


if __name__ == '__main__':
    main()
