"""Convert a torchvision ShuffleNet V2 ImageNet checkpoint to our layout.

    python tools/model_converters/torchvision2shufflenet.py \
        shufflenetv2_x1-5666bf0f80.pth checkpoints/shufflenetv2_1x_tv.pth

The input is a ``torchvision.models.shufflenet_v2_x*`` state dict (0.5, 1.0,
1.5 or 2.0x); the output loads into ``ShuffleNetV2`` (and ``ShuffleNetV2Star``,
whose extra depthwise convs stay the identity) with the same width, with
``init_cfg=dict(type='Pretrained', checkpoint=DST)``. Converting first is
optional: the backbones recognise and convert torchvision's file themselves.
The features are equal to torchvision's (conv1, stage2/3/4, conv5).
"""
import sys

from shufflenet_det.models.backbones.converters import (
    TORCHVISION_SHUFFLENET_CONVERTERS, convert_command, converter_parser)


def main(argv=None):
    parser = converter_parser(__doc__,
                              'torchvision shufflenet_v2_x* checkpoint')
    args = parser.parse_args(argv)
    sys.exit(convert_command(args.src, args.dst,
                             TORCHVISION_SHUFFLENET_CONVERTERS))


if __name__ == '__main__':
    main()
