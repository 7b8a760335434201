import re
from collections import OrderedDict

import torch.nn as nn
from mmcv.cnn import ConvModule

from mmdet.models.layers import InvertedResidual
from mmdet.models.utils import make_divisible
from mmdet.registry import MODELS
from .base import BaseBackbone
from .pretrained import init_from_pretrained


@MODELS.register_module()
class MobileNetV2Paper(BaseBackbone):
    """MobileNet V2 (Sandler et al., CVPR 2018) at the widths of the
    ShuffleNet V2 paper's comparison (Table 8: 0.15, 0.6, 1.0 and 1.4 at
    39, 141, 300 and 585 MFLOPs), as an MMDetection backbone.

    The network is mmdet's ``MobileNetV2`` (same blocks, mmdet's
    ``InvertedResidual``; same module names and output indices, so mmdet
    checkpoints load as they are) with one difference: the multiple the
    channel numbers are rounded to, ``divisor``, is an argument. mmdet and
    torchvision round to a multiple of 8, which is right at 1.0 and 1.4 but
    misses the paper's FLOPs at the small widths (0.15: 30.6M for 39M; 0.6:
    151.0M for 141M); rounding to a multiple of 10 lands both within 1%
    (39.4M, 141.8M). The Table 7 cells (``shufflenet_det.table7``) use
    ``divisor=10`` at 0.15 and 0.6 and 8 at 1.0 and 1.4. (mmdet's class is
    not subclassed: its ``__init__`` hard-codes the 8.)

    Architecture (MobileNet V2 Table 2; t = expansion, n = blocks, s =
    stride of the first block; channels after rounding):

    =======  ====  ===  ===  ================================  ======
    name     t     n    s    channels at 0.15 / 0.6 / 1.0 / 1.4  stride
    =======  ====  ===  ===  ================================  ======
    conv1    -     1    2    10 / 20 / 32 / 48                   2
    layer1   1     1    1    10 / 10 / 16 / 24                   2
    layer2   6     2    2    10 / 20 / 24 / 32                   4
    layer3   6     3    2    10 / 20 / 32 / 48                   8
    layer4   6     4    2    10 / 40 / 64 / 88                   16
    layer5   6     3    1    20 / 60 / 96 / 136                  16
    layer6   6     3    2    30 / 100 / 160 / 224                32
    layer7   6     1    1    50 / 190 / 320 / 448                32
    conv2    -     1    1    1280 / 1280 / 1280 / 1792           32
    =======  ====  ===  ===  ================================  ======

    (0.15 and 0.6 with ``divisor=10``, 1.0 and 1.4 with 8. conv2 has 1280
    channels, times the multiplier above 1, as in MobileNet V2 Sec. 5.1.)

    Output indices (``out_indices``), as mmdet's MobileNetV2: 0..6 =
    layer1..7, 7 = conv2; strides 2, 4, 8, 16, 16, 32, 32, 32.

    - 4: layer5, stride 16, **C4** (Light-Head R-CNN's RPN input: the last
      stride-16 feature);
    - 7: conv2, stride 32, **C5** (input of the thin feature map). C5 is
      the last 1x1 conv, not layer7, for the same reason as ShuffleNet V2's
      conv5: it is the feature the classifier pools, its cost is part of
      the FLOPs level, and Table 7 replaces "only backbone networks"
      (ShuffleNet V2 paper Sec. 4.2), so every family hands the head the
      feature its ImageNet classifier was trained on.

    Checkpoints: ``init_cfg=dict(type='Pretrained', checkpoint=...)`` reads
    our (= mmdet's) layout, mmpretrain's ``MobileNetV2`` (``layerN.B.conv.i``)
    and torchvision's ``mobilenet_v2`` (``features.N``), recognised from the
    keys (``MOBILENET_V2_CONVERTERS``); mmpretrain/mmdet ``backbone.``
    prefixes are stripped. torchvision's (and mmpretrain's) 1.0 and 1.4
    models are ``divisor=8``; ``tools/model_converters/
    torchvision2mobilenetv2.py`` writes a converted file.

    Args:
        widen_factor (float): width multiplier. Default: 1.0.
        divisor (int): channel numbers are rounded to the nearest multiple
            of it, never below it nor below 90% of the exact width (mmdet's
            ``make_divisible``). 8 is mmdet's and torchvision's rounding.
            Default: 8.
        out_indices (Sequence[int]): which outputs to return (see above).
            Default: (7, ).
        frozen_stages (int): stages to freeze (requires_grad False, norm in
            eval mode): 0 freezes conv1, k freezes conv1 and layer1..k; -1
            freezes nothing. Default: -1.
        conv_cfg (dict, optional): convolution config. Default: None.
        norm_cfg (dict): normalisation config. Default: BN.
        act_cfg (dict): activation config. Default: ReLU6.
        norm_eval (bool): keep norm layers in eval mode (frozen statistics)
            during training, as detection fine-tuning does. Default: False.
        with_cp (bool): gradient checkpointing of the blocks. Default: False.
        init_cfg (dict or list[dict], optional): initialisation; a
            ``dict(type='Pretrained', checkpoint=...)`` loads ImageNet
            weights in any of the layouts above.
    """

    #: expand ratio t, channels c, blocks n, stride s (MobileNet V2 Table 2)
    arch_settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2],
                     [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                     [6, 320, 1, 1]]
    out_names = (*(f'layer{i}' for i in range(1, 8)), 'conv2')

    @property
    def num_stages(self):
        """layer1..7: ``frozen_stages`` never reaches conv2."""
        return len(self.arch_settings)

    def __init__(self, widen_factor=1.0, divisor=8, out_indices=(7, ),
                 frozen_stages=-1, conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU6'), norm_eval=False, with_cp=False,
                 init_cfg=None):
        if not (isinstance(divisor, int) and divisor >= 1):
            raise ValueError(f'divisor must be an int >= 1, got {divisor!r}')
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp,
                         init_cfg)
        self.widen_factor = widen_factor
        self.divisor = divisor
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        in_channels = make_divisible(32 * widen_factor, divisor)
        self.conv1 = ConvModule(3, in_channels, 3, 2, 1, **common)
        self.layers = []
        out_channels = []
        for i, (t, c, n, s) in enumerate(self.arch_settings):
            channels = make_divisible(c * widen_factor, divisor)
            blocks = []
            for j in range(n):
                blocks.append(
                    InvertedResidual(
                        in_channels, channels,
                        mid_channels=int(round(in_channels * t)),
                        stride=s if j == 0 else 1,
                        with_expand_conv=t != 1, with_cp=with_cp, **common))
                in_channels = channels
            name = f'layer{i + 1}'
            self.add_module(name, nn.Sequential(*blocks))
            self.layers.append(name)
            out_channels.append(channels)
        # MobileNet V2 Sec. 5.1: the last conv is not thinned below 1.0.
        last = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.conv2 = ConvModule(in_channels, last, 1, **common)
        self.layers.append('conv2')
        #: channels of each output index
        self.out_channels = (*out_channels, last)

    def init_weights(self):
        if init_from_pretrained(self, MOBILENET_V2_CONVERTERS):
            return
        super().init_weights()
        if self.init_cfg is None:
            self._kaiming_init()

    def forward(self, x):
        x = self.conv1(x)
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def stage(self, i):
        # ``layers`` holds names, as in mmdet's MobileNetV2.
        return getattr(self, self.layers[i])


# ------------------------------------------------------ checkpoint layouts
# Blocks per layer (MobileNet V2 Table 2), the same at every width.
_BLOCKS = [n for _, _, n, _ in MobileNetV2Paper.arch_settings]
_EXPANDS = [t != 1 for t, _, _, _ in MobileNetV2Paper.arch_settings]
# Our (mmdet's) names of the convs of a block, in order.
_BLOCK_CONVS = {True: ('expand_conv', 'depthwise_conv', 'linear_conv'),
                False: ('depthwise_conv', 'linear_conv')}


def is_torchvision_mobilenet_v2(state):
    return 'features.0.0.weight' in state and 'features.18.0.weight' in state


def torchvision_to_mobilenet_v2(state):
    """torchvision ``mobilenet_v2`` state dict -> :class:`MobileNetV2Paper`.

    torchvision: ``features.0`` = conv1 and ``features.18`` = conv2
    (``Conv2dNormActivation``: ``.0`` conv, ``.1`` BN); ``features.1..17``
    = the 17 blocks of layer1..7, each ``conv`` = [conv-BN-ReLU6 (expand,
    absent in layer1), conv-BN-ReLU6 (depthwise), conv (linear), BN];
    ``classifier`` is dropped.
    """
    where, f = {}, 1  # features index -> (layer, block)
    for layer, n in enumerate(_BLOCKS, 1):
        for b in range(n):
            where[f], f = (layer, b), f + 1
    out = OrderedDict()
    for key, value in state.items():
        if key.startswith('classifier.'):
            continue
        m = re.match(r'^features\.(\d+)\.(\d+)\.(\w+)$', key)
        if m and int(m.group(1)) in (0, 18):
            name = 'conv1' if m.group(1) == '0' else 'conv2'
            kind = 'conv' if m.group(2) == '0' else 'bn'
            out[f'{name}.{kind}.{m.group(3)}'] = value
            continue
        m = re.match(r'^features\.(\d+)\.conv\.(\d+)\.(?:(\d+)\.)?(\w+)$',
                     key)
        if not m or int(m.group(1)) not in where:
            out[key] = value  # reported as unexpected by the loader
            continue
        layer, b = where[int(m.group(1))]
        convs = _BLOCK_CONVS[_EXPANDS[layer - 1]]
        pos, sub, param = int(m.group(2)), m.group(3), m.group(4)
        if sub is not None:  # Conv2dNormActivation: conv.<pos>.{0,1}
            module, kind = convs[pos], 'conv' if sub == '0' else 'bn'
        else:  # the linear conv and its BN, plain entries of ``conv``
            linear = len(convs) - 1
            module = convs[-1]
            kind = 'conv' if pos == linear else 'bn'
        out[f'layer{layer}.{b}.{module}.{kind}.{param}'] = value
    return out


def is_mmpretrain_mobilenet_v2(state):
    return any(re.match(r'^layer\d\.\d+\.conv\.\d\.', k) for k in state)


def mmpretrain_to_mobilenet_v2(state):
    """mmpretrain ``MobileNetV2`` (``layerN.B.conv.i``, a Sequential of
    ConvModules) -> :class:`MobileNetV2Paper` (mmdet's ``expand_conv``,
    ``depthwise_conv``, ``linear_conv``). conv1 and conv2 are the same."""
    out = OrderedDict()
    for key, value in state.items():
        m = re.match(r'^layer(\d)\.(\d+)\.conv\.(\d)\.(.*)$', key)
        if m:
            layer, b, pos, rest = m.groups()
            convs = _BLOCK_CONVS[_EXPANDS[int(layer) - 1]]
            key = f'layer{layer}.{b}.{convs[int(pos)]}.{rest}'
        out[key] = value
    return out


#: layouts :class:`MobileNetV2Paper` converts when loading (ours = mmdet's
#: needs none); see ``pretrained.load_pretrained``.
MOBILENET_V2_CONVERTERS = [
    ('torchvision', is_torchvision_mobilenet_v2, torchvision_to_mobilenet_v2),
    ('mmpretrain', is_mmpretrain_mobilenet_v2, mmpretrain_to_mobilenet_v2),
]
