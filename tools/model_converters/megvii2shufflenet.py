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
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from shufflenet_det.models.backbones.converters import (  # noqa: E402
    is_megvii_shufflenet_v1, is_megvii_shufflenet_v2, megvii_to_shufflenet_v1,
    megvii_to_shufflenet_v2)
from shufflenet_det.models.backbones.pretrained import \
    convert_checkpoint  # noqa: E402

CONVERTERS = [
    ('megvii ShuffleNet V1', is_megvii_shufflenet_v1, megvii_to_shufflenet_v1),
    ('megvii ShuffleNet V2', is_megvii_shufflenet_v2, megvii_to_shufflenet_v2),
]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('src', help='official megvii ShuffleNet checkpoint')
    p.add_argument('dst', help='where to save the converted checkpoint')
    args = p.parse_args(argv)
    try:
        layout, n = convert_checkpoint(args.src, args.dst, CONVERTERS)
    except ValueError as e:
        sys.exit(f'error: {e}')
    print(f'{args.src} ({layout}) -> {args.dst}: {n} tensors')


if __name__ == '__main__':
    main()
