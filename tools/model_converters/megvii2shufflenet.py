"""Convert an official megvii ShuffleNet V1 checkpoint to our layout.

    python tools/model_converters/megvii2shufflenet.py \
        snetv1_group3_1.0x.pth.tar checkpoints/shufflenetv1_g3_1x.pth

The input is a checkpoint of megvii-model/ShuffleNet-Series (``module.
first_conv``, ``features.N.branch_main_1/2``, ``classifier``); groups come
from the weights. The output loads into ``ShuffleNetV1`` with the same
``groups`` and ``widen_factor`` and computes the same features: the official
channel shuffle is the inverse of ours, and the converter reorders every
unit's bottleneck channels to absorb it. That is possible for every g = 3
model (the ones the ShuffleNet V2 paper compares with) and for g = 8 at 2.0x;
other g = 8 widths are refused with the reason.

Official ShuffleNet V2 checkpoints (``branch_main``, ``branch_proj``,
``conv_last``) are refused too: that release builds the first unit of
stage 2 with other branch widths than the paper's Table 5 network of
torchvision, mmpretrain and ours (see ``converters.megvii_to_shufflenet_v2``);
use torchvision's ImageNet weights for ``ShuffleNetV2``.
"""
import sys

from shufflenet_det.models.backbones.converters import (
    MEGVII_SHUFFLENET_CONVERTERS, convert_command, converter_parser)


def main(argv=None):
    parser = converter_parser(__doc__, 'official megvii ShuffleNet checkpoint')
    args = parser.parse_args(argv)
    sys.exit(convert_command(args.src, args.dst,
                             MEGVII_SHUFFLENET_CONVERTERS))


if __name__ == '__main__':
    main()
