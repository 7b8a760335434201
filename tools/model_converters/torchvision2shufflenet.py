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
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from shufflenet_det.models.backbones.converters import (  # noqa: E402
    is_torchvision_shufflenet_v2, torchvision_to_shufflenet_v2)
from shufflenet_det.models.backbones.pretrained import \
    convert_checkpoint  # noqa: E402

CONVERTERS = [('torchvision ShuffleNet V2', is_torchvision_shufflenet_v2,
               torchvision_to_shufflenet_v2)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('src', help='torchvision shufflenet_v2_x* checkpoint')
    p.add_argument('dst', help='where to save the converted checkpoint')
    args = p.parse_args(argv)
    try:
        layout, n = convert_checkpoint(args.src, args.dst, CONVERTERS)
    except ValueError as e:
        sys.exit(f'error: {e}')
    print(f'{args.src} ({layout}) -> {args.dst}: {n} tensors')


if __name__ == '__main__':
    main()
