import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from .converters import SHUFFLENET_V2_CONVERTERS
from .pretrained import init_from_pretrained


def channel_shuffle(x, groups):
    """Channel shuffle (ShuffleNet V1, Sec. 3.1): with ``groups`` g and
    ``c = g * n`` channels, output channel ``i * g + j`` is input channel
    ``j * n + i``."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(
        b, c, h, w)


def concat_shuffle(a, b):
    """``channel_shuffle(torch.cat((a, b), 1), 2)`` in one copy.

    The ShuffleNet V2 unit ends with "concat, then shuffle with 2 groups"
    (paper Fig. 3c/d); that interleaves the channels of the two halves,
    which ``stack`` on a new axis after the channels does directly, without
    writing the concatenation first (guideline G4: fewer element-wise ops).
    """
    return torch.stack((a, b), dim=2).flatten(1, 2)


class ShuffleUnitV2(BaseModule):
    """The ShuffleNet V2 building block (paper Fig. 3c, and 3d for stride 2).

    Stride 1: the input is split in two halves; one passes through, the
    other goes through 1x1 conv - 3x3 depthwise conv - 1x1 conv; the halves
    are concatenated and shuffled. Stride 2: no split; the shortcut branch
    (3x3 dw stride 2 - 1x1 conv) and the main branch both see the whole
    input, doubling the channels.

    ``extra_dw=True`` gives the ShuffleNet V2* unit (paper Sec. 4.2 and
    Table 7): a 3x3 depthwise conv (+BN, stride 1) before the first
    pointwise conv of the main branch.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        stride (int): 1 or 2.
        extra_dw (bool): the V2* extra depthwise conv.
        conv_cfg, norm_cfg, act_cfg (dict): as in mmcv's ConvModule.
        with_cp (bool): checkpoint the unit to save memory in training.
    """

    def __init__(self, in_channels, out_channels, stride=1, extra_dw=False,
                 conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), with_cp=False, init_cfg=None):
        super().__init__(init_cfg)
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride}')
        if stride == 1 and in_channels != out_channels:
            raise ValueError('a stride-1 unit keeps its channels: got '
                             f'{in_channels} -> {out_channels}')
        self.stride = stride
        self.with_cp = with_cp
        mid = out_channels // 2
        main_in = in_channels if stride == 2 else in_channels // 2
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)

        def dw(channels, s):
            return ConvModule(channels, channels, 3, s, 1, groups=channels,
                              act_cfg=None, **common)

        if stride == 2:
            self.branch1 = nn.Sequential(
                dw(in_channels, 2),
                ConvModule(in_channels, mid, 1, act_cfg=act_cfg, **common))
        main = [dw(main_in, 1)] if extra_dw else []
        main += [
            ConvModule(main_in, mid, 1, act_cfg=act_cfg, **common),
            dw(mid, stride),
            ConvModule(mid, mid, 1, act_cfg=act_cfg, **common),
        ]
        self.branch2 = nn.Sequential(*main)

    def forward(self, x):

        def _inner(x):
            if self.stride == 2:
                return concat_shuffle(self.branch1(x), self.branch2(x))
            x1, x2 = x.chunk(2, dim=1)
            return concat_shuffle(x1, self.branch2(x2))

        if self.with_cp and x.requires_grad:
            return cp.checkpoint(_inner, x, use_reentrant=False)
        return _inner(x)


@MODELS.register_module()
class ShuffleNetV2(BaseModule):
    """ShuffleNet V2 (Ma et al., ECCV 2018), as an MMDetection backbone.

    Architecture of the paper's Table 5: conv1 3x3/2 (24 ch), max pool 3x3/2,
    stages 2/3/4 of 4/8/4 units (the first of each with stride 2), conv5 1x1.

    =======  ===========  =====  ==============  ================
    width    stage2/3/4   conv5  MFLOPs (paper)  params (paper)
    =======  ===========  =====  ==============  ================
    0.5x     48/96/192    1024   41              1.4M
    1.0x     116/232/464  1024   146             2.3M
    1.5x     176/352/704  1024   299             3.5M
    2.0x     244/488/976  2048   591             7.4M
    =======  ===========  =====  ==============  ================

    Output indices (``out_indices``):

    - 0: stage2, stride 8;
    - 1: stage3, stride 16 (**C4**: Light-Head R-CNN's RPN input);
    - 2: stage4, stride 32;
    - 3: conv5, stride 32 (**C5**: input of Light-Head's thin feature map).

    The key layout matches mmpretrain's ShuffleNetV2 (``conv1``,
    ``layers.i.j.branch1/2``, ``layers.3`` = conv5), so its checkpoints load
    as they are; torchvision's ``shufflenet_v2_x*`` state dicts are
    converted when loaded (see ``converters.py``).

    Args:
        widen_factor (float): 0.5, 1.0, 1.5 or 2.0.
        out_indices (Sequence[int]): which outputs to return (see above).
            Default: (3, ).
        frozen_stages (int): stages to freeze (requires_grad False, norm in
            eval mode): 0 freezes conv1 (with the max pool), k freezes conv1
            and the first k stages; -1 freezes nothing. Default: -1.
        conv_cfg (dict, optional): convolution config. Default: None.
        norm_cfg (dict): normalisation config. Default: BN.
        act_cfg (dict): activation config. Default: ReLU.
        norm_eval (bool): keep norm layers in eval mode (frozen statistics)
            during training, as detection fine-tuning does. Default: False.
        with_cp (bool): gradient checkpointing of the units. Default: False.
        init_cfg (dict or list[dict], optional): initialisation; a
            ``dict(type='Pretrained', checkpoint=...)`` loads ImageNet
            weights in any layout ``converters.py`` knows.
    """

    #: widen_factor -> (stage2/3/4 channels, conv5 channels); paper Table 5.
    arch_settings = {
        0.5: ([48, 96, 192], 1024),
        1.0: ([116, 232, 464], 1024),
        1.5: ([176, 352, 704], 1024),
        2.0: ([244, 488, 976], 2048),
    }
    stage_blocks = (4, 8, 4)
    extra_dw = False

    def __init__(self, widen_factor=1.0, out_indices=(3, ), frozen_stages=-1,
                 conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), norm_eval=False, with_cp=False,
                 init_cfg=None):
        super().__init__(init_cfg)
        if widen_factor not in self.arch_settings:
            raise ValueError(
                f'{type(self).__name__}: unsupported widen_factor '
                f'{widen_factor}; valid: {sorted(self.arch_settings)}')
        for i in out_indices:
            if i not in range(4):
                raise ValueError(
                    f'{type(self).__name__}: out_indices {tuple(out_indices)}'
                    ' must be in 0..3 (stage2, stage3, stage4, conv5)')
        if frozen_stages not in range(-1, 4):
            raise ValueError(
                f'frozen_stages must be in -1..3, got {frozen_stages}')
        self.widen_factor = widen_factor
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        stage_channels, last_channels = self.arch_settings[widen_factor]
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.conv1 = ConvModule(3, 24, 3, 2, 1, **common)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layers = nn.ModuleList()
        in_channels = 24
        for channels, blocks in zip(stage_channels, self.stage_blocks):
            units = [
                ShuffleUnitV2(in_channels if i == 0 else channels, channels,
                              stride=2 if i == 0 else 1,
                              extra_dw=self.extra_dw, with_cp=with_cp,
                              **common) for i in range(blocks)
            ]
            self.layers.append(nn.Sequential(*units))
            in_channels = channels
        self.layers.append(ConvModule(in_channels, last_channels, 1, **common))
        #: channels of each output index
        self.out_channels = (*stage_channels, last_channels)

    def init_weights(self):
        if init_from_pretrained(self, SHUFFLENET_V2_CONVERTERS):
            return
        super().init_weights()
        if self.init_cfg is None:
            # As torchvision and mmpretrain: Kaiming for convs, BN at 1/0.
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode='fan_out',
                                            nonlinearity='relu')
                elif isinstance(m, _BatchNorm):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self):
        frozen = []
        if self.frozen_stages >= 0:
            frozen.append(self.conv1)
        frozen += list(self.layers[:max(self.frozen_stages, 0)])
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


@MODELS.register_module()
class ShuffleNetV2Star(ShuffleNetV2):
    """ShuffleNet V2* (paper Sec. 4.2, Table 7): ShuffleNet V2 with "an
    additional 3x3 depthwise convolution before the first pointwise
    convolution in each building block", to enlarge the receptive field
    (Light-Head R-CNN's Xception-like backbone has 7 against V2's 3).

    Where the extra conv goes in the stride-2 unit is not said in the paper.
    We read the sentence literally, branch by branch: the main branch starts
    with a 1x1 conv, so the extra 3x3 depthwise conv (stride 1) goes before
    it; the shortcut branch already starts with a 3x3 depthwise conv before
    its 1x1 conv, so it is unchanged. Every unit thus gets exactly one more
    depthwise conv, the main branch of every unit grows its receptive field
    by 2, and the cost stays "a few additional FLOPs" (+9 multiply-adds per
    input channel and pixel; about +4 MFLOPs at 1x, 224x224). Weights of V2
    do not load into V2* (the main branch's indices shift by one).

    Args: as :class:`ShuffleNetV2`.
    """

    extra_dw = True
