import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.models.layers import InvertedResidual
from mmdet.models.utils import make_divisible
from mmdet.registry import MODELS
from .converters import MOBILENET_V2_CONVERTERS
from .pretrained import init_from_pretrained


@MODELS.register_module()
class MobileNetV2Paper(BaseModule):
    """MobileNet V2 (Sandler et al., CVPR 2018) with a configurable channel
    rounding, to reach the widths the ShuffleNet V2 paper compares with.

    mmdet's ``MobileNetV2`` (and torchvision's) round every width up to a
    multiple of 8; at the small multipliers of the ShuffleNet V2 paper's
    Table 8 that misses its FLOPs (0.15: ~31M instead of 39M; 0.6: ~151M
    instead of 141M). Here ``divisor`` sets the multiple: the Table 7 cells
    use ``divisor=1`` at 0.15 and 0.6 (plain rounding), 8 otherwise. The
    blocks are mmdet's ``InvertedResidual`` and the layout is mmdet's
    (``conv1``, ``layer1..7``, ``conv2``), so mmdet / mmpretrain checkpoints
    load as they are and torchvision's ``mobilenet_v2`` state dict is
    converted when loaded (``divisor=8`` at 1.0 matches torchvision).

    Output indices (as mmdet's MobileNetV2): 0..6 = layer1..7, 7 = conv2
    (the last 1x1 conv, 1280 channels, 1280 x widen_factor above 1). Strides
    2, 4, 8, 16, 16, 32, 32, 32: **C4** = 4 (layer5), **C5** = 7 (conv2).

    Args:
        widen_factor (float): width multiplier. Default: 1.0.
        divisor (int): channels are rounded to a multiple of it (never
            below it, nor below 90% of the exact width). Default: 8.
        out_indices, frozen_stages, conv_cfg, norm_cfg, act_cfg, norm_eval,
        with_cp, init_cfg: as mmdet's MobileNetV2 (frozen_stages k freezes
            conv1 and layer1..k).
    """

    # expand ratio, channels, blocks, stride (MobileNet V2 Table 2)
    arch_settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2],
                     [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                     [6, 320, 1, 1]]

    def __init__(self, widen_factor=1.0, divisor=8, out_indices=(7, ),
                 frozen_stages=-1, conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU6'), norm_eval=False, with_cp=False,
                 init_cfg=None):
        super().__init__(init_cfg)
        if not set(out_indices) <= set(range(8)):
            raise ValueError(f'MobileNetV2Paper: out_indices {out_indices} '
                             'must be in 0..7')
        if frozen_stages not in range(-1, 8):
            raise ValueError(
                f'frozen_stages must be in -1..7, got {frozen_stages}')
        self.widen_factor = widen_factor
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        in_channels = make_divisible(32 * widen_factor, divisor)
        self.conv1 = ConvModule(3, in_channels, 3, 2, 1, **common)
        self.layers = []
        out_channels = []
        for i, (t, c, n, s) in enumerate(self.arch_settings):
            channels = make_divisible(c * widen_factor, divisor)
            blocks = []
            for j in range(n):
                blocks.append(InvertedResidual(
                    in_channels, channels,
                    mid_channels=int(round(in_channels * t)),
                    stride=s if j == 0 else 1, with_expand_conv=t != 1,
                    with_cp=with_cp, **common))
                in_channels = channels
            name = f'layer{i + 1}'
            self.add_module(name, nn.Sequential(*blocks))
            self.layers.append(name)
            out_channels.append(channels)
        last = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.conv2 = ConvModule(in_channels, last, 1, **common)
        self.layers.append('conv2')
        self.out_channels = (*out_channels, last)

    def init_weights(self):
        if not init_from_pretrained(self, MOBILENET_V2_CONVERTERS):
            super().init_weights()
            if self.init_cfg is None:
                for m in self.modules():
                    if isinstance(m, nn.Conv2d):
                        nn.init.kaiming_normal_(m.weight, mode='fan_out')
                    elif isinstance(m, _BatchNorm):
                        nn.init.constant_(m.weight, 1)
                        nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.conv1(x)
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self):
        frozen = [self.conv1] if self.frozen_stages >= 0 else []
        frozen += [getattr(self, f'layer{i}')
                   for i in range(1, self.frozen_stages + 1)]
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode=True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
