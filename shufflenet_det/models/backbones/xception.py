from collections import OrderedDict

import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer

from mmdet.registry import MODELS
from .base import BaseBackbone, BaseUnit
from .pretrained import init_from_pretrained


def _activation(act_cfg):
    """The activation layer of ``act_cfg`` (Identity for None), never in
    place: in this network every activated tensor is also read as it is
    (by a shortcut, or by the next stage)."""
    if act_cfg is None:
        return nn.Identity()
    act_cfg = dict(act_cfg)
    if 'inplace' in act_cfg:
        act_cfg['inplace'] = False
    return build_activation_layer(act_cfg)


class SeparableConv(nn.Sequential):
    """Xception's separable convolution with its activation in front
    (Chollet 2017, Fig. 5: ReLU - SeparableConv - BN): the activation, a 3x3
    depthwise conv (carrying the stride), a 1x1 conv, BN. Nothing between
    the depthwise and the 1x1 conv (Sec. 4.7: no activation there works
    best; one BN per separable conv, as in Xception).
    """

    def __init__(self, in_channels, out_channels, stride=1, conv_cfg=None,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU')):
        super().__init__(OrderedDict(
            act=_activation(act_cfg),
            depthwise=ConvModule(in_channels, in_channels, 3, stride, 1,
                                 groups=in_channels, bias=False,
                                 conv_cfg=conv_cfg, norm_cfg=None,
                                 act_cfg=None),
            pointwise=ConvModule(in_channels, out_channels, 1,
                                 conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                 act_cfg=None)))


class XceptionBlock(BaseUnit):
    """Xception's residual block of three separable convolutions (Chollet
    2017, Fig. 5, middle flow), with a bottleneck:
    ``in -> mid -> mid -> out``, each separable conv preceded by the
    activation; the sum is not activated (the next block's first separable
    conv activates it, the shortcut reads it as it is).

    When the shape changes, the stride sits on the third depthwise conv and
    the shortcut is a strided 1x1 conv + BN (Xception's entry flow, whose
    branch ends with a 3x3/2 max pool, replaced by a strided separable conv
    as in DeepLabv3+'s aligned Xception). Three 3x3 depthwise convs in a
    row give the block a 7x7 receptive field (ShuffleNet V2 paper Sec. 4.2:
    Xception's 7 against ShuffleNet V2's 3, the reason for V2*).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        mid_channels (int): output channels of the first two separable
            convs (the bottleneck).
        stride (int): 1 or 2.
        conv_cfg, norm_cfg, act_cfg (dict): as in mmcv's ConvModule.
        with_cp (bool): checkpoint the block to save memory in training.
    """

    def __init__(self, in_channels, out_channels, mid_channels, stride=1,
                 conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), with_cp=False, init_cfg=None):
        super().__init__(with_cp, init_cfg)
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride}')
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        self.convs = nn.Sequential(
            SeparableConv(in_channels, mid_channels, act_cfg=act_cfg,
                          **common),
            SeparableConv(mid_channels, mid_channels, act_cfg=act_cfg,
                          **common),
            SeparableConv(mid_channels, out_channels, stride,
                          act_cfg=act_cfg, **common))
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ConvModule(in_channels, out_channels, 1, stride,
                                       act_cfg=None, **common)

    def _forward(self, x):
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.convs(x) + identity


@MODELS.register_module()
class LightXception(BaseBackbone):
    """The "Xception-like" backbone of Light-Head R-CNN's small setting (Li
    et al. 2017, Sec. 4.2.3, table "Architecture of the Xception-like
    backbone"), at the four widths of the ShuffleNet V2 paper's comparison
    (Table 8: 0.5x/1x/1.5x/2x = 40, 145, 305, 525 MFLOPs, 224x224,
    classifier included), as an MMDetection backbone.

    The stages (conv1, max pool, 1 + 3 / 1 + 7 / 1 + 3 units of 144 / 288 /
    576 channels, no conv after stage 4) are the Light-Head R-CNN paper's;
    it does not give the unit. Ours is Xception's residual block of three
    separable convs (:class:`XceptionBlock`). Xception keeps the block's
    width throughout, which here would cost 1015M at 1x; the budget forces
    a bottleneck: the first two separable convs have ``out / 6`` channels
    (``bottleneck_ratio``; 1/4 gives 205M, 1/8 115M), and the stride sits
    on the third depthwise conv, at the end of the branch where Xception
    downsamples (on the first: 128M). Every width, conv1 included, is the
    1x width times the multiplier, so no rounding is needed: block widths
    are multiples of 24, bottleneck widths multiples of 4 (12 at 0.5x). At
    0.5x conv1 is thus halved too (ShuffleNet's fixed 24 would give 47.0M).

    ======  ======  ==========  ==========================  =======  ======
    stage   output  op          channels 0.5x/1x/1.5x/2x    repeats  stride
    ======  ======  ==========  ==========================  =======  ======
    image   224     -           3                           -        -
    conv1   112     3x3 conv    12 / 24 / 36 / 48           1        2
    pool    56      3x3 max     12 / 24 / 36 / 48           1        2
    stage2  28      block       72 / 144 / 216 / 288        1        2
            28      block       72 / 144 / 216 / 288        3        1
    stage3  14      block       144 / 288 / 432 / 576       1        2
            14      block       144 / 288 / 432 / 576       7        1
    stage4  7       block       288 / 576 / 864 / 1152      1        2
            7       block       288 / 576 / 864 / 1152      3        1
    pool    1       global avg
    fc      1       1000-way
    MFLOPs                      41.5 / 143.7 / 306.6 / 530.3
    ======  ======  ==========  ==========================  =======  ======

    (block = three separable convs ``in -> c/6 -> c/6 -> c``, each after a
    ReLU, the last one strided in the first block of a stage, plus a
    shortcut; see :class:`XceptionBlock`. MFLOPs: multiply-adds,
    ``tools/analysis/backbone_flops.py``; the paper's 40 / 145 / 305 / 525.)

    Output indices (``out_indices``), each after the activation (what the
    next separable conv, or Xception's classifier, reads):

    - 0: stage2, stride 8;
    - 1: stage3, stride 16 (**C4**: Light-Head R-CNN's RPN input);
    - 2: stage4, stride 32 (**C5**: input of the thin feature map).

    No public ImageNet weights exist for this network: pretrain it with
    ``configs/pretrain/`` (mmpretrain), whose checkpoints (``backbone.``
    keys) load with ``init_cfg=dict(type='Pretrained', checkpoint=...)``.

    Args:
        widen_factor (float): 0.5, 1.0, 1.5 or 2.0. Default: 1.0.
        out_indices (Sequence[int]): which outputs to return (see above).
            Default: (2, ).
        frozen_stages (int): stages to freeze (requires_grad False, norm in
            eval mode): 0 freezes conv1, k freezes conv1 and the first k
            stages; -1 freezes nothing. Default: -1.
        conv_cfg (dict, optional): convolution config. Default: None.
        norm_cfg (dict): normalisation config. Default: BN.
        act_cfg (dict): activation config. Default: ReLU.
        norm_eval (bool): keep norm layers in eval mode (frozen statistics)
            during training, as detection fine-tuning does. Default: False.
        with_cp (bool): gradient checkpointing of the blocks. Default: False.
        init_cfg (dict or list[dict], optional): initialisation; a
            ``dict(type='Pretrained', checkpoint=...)`` loads ImageNet
            weights in our layout (or an mmpretrain classifier's).
    """

    #: widen_factor -> (conv1 channels, stage2/3/4 channels): the 1x widths
    #: (Light-Head R-CNN's table) times the multiplier.
    arch_settings = {
        0.5: (12, (72, 144, 288)),
        1.0: (24, (144, 288, 576)),
        1.5: (36, (216, 432, 864)),
        2.0: (48, (288, 576, 1152)),
    }
    #: blocks per stage: one of stride 2, then stride 1 (Light-Head R-CNN)
    stage_blocks = (4, 8, 4)
    #: block width / bottleneck width (the budget's choice, see above)
    bottleneck_ratio = 6
    out_names = ('stage2', 'stage3', 'stage4')

    def __init__(self, widen_factor=1.0, out_indices=(2, ), frozen_stages=-1,
                 conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), norm_eval=False, with_cp=False,
                 init_cfg=None):
        self._check_choice('widen_factor', widen_factor, self.arch_settings)
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp,
                         init_cfg)
        self.widen_factor = widen_factor
        stem, stage_channels = self.arch_settings[widen_factor]
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.conv1 = ConvModule(3, stem, 3, 2, 1, **common)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layers = nn.ModuleList()
        in_channels = stem
        for channels, blocks in zip(stage_channels, self.stage_blocks):
            self.layers.append(nn.Sequential(*[
                XceptionBlock(in_channels if i == 0 else channels, channels,
                              channels // self.bottleneck_ratio,
                              stride=2 if i == 0 else 1, with_cp=with_cp,
                              **common) for i in range(blocks)
            ]))
            in_channels = channels
        # The stages' sums are not activated (XceptionBlock); the outputs
        # are, as the next separable conv or the classifier reads them.
        self.out_act = _activation(act_cfg)
        #: channels of each output index
        self.out_channels = tuple(stage_channels)

    def init_weights(self):
        if init_from_pretrained(self):
            return
        super().init_weights()
        if self.init_cfg is None:
            self._kaiming_init()

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(self.out_act(x))
        return tuple(outs)
