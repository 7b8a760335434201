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
import sys

from shufflenet_det.models.backbones.converters import (convert_command,
                                                        converter_parser)
from shufflenet_det.models.backbones.mobilenet_v2 import \
    MOBILENET_V2_CONVERTERS


def main(argv=None):
    parser = converter_parser(__doc__, 'torchvision mobilenet_v2 checkpoint')
    args = parser.parse_args(argv)
    sys.exit(convert_command(args.src, args.dst, MOBILENET_V2_CONVERTERS))


if __name__ == '__main__':
    main()
