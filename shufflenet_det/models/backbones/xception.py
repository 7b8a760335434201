import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from .pretrained import init_from_pretrained
from .shufflenet_v2 import ShuffleNetV2


class SeparableConv(nn.Sequential):
    """Xception's separable convolution: 3x3 depthwise conv (stride) then
    1x1 conv, each followed by BN; ReLU at the end unless ``act_cfg`` is
    None."""

    def __init__(self, in_channels, out_channels, stride=1, conv_cfg=None,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU')):
        super().__init__(
            ConvModule(in_channels, in_channels, 3, stride, 1,
                       groups=in_channels, conv_cfg=conv_cfg,
                       norm_cfg=norm_cfg, act_cfg=None),
            ConvModule(in_channels, out_channels, 1, conv_cfg=conv_cfg,
                       norm_cfg=norm_cfg, act_cfg=act_cfg))


class XceptionBlock(BaseModule):
    """A residual block of three separable convolutions with a bottleneck:
    ``in -> mid -> mid -> out`` (mid = out / 4), stride on the second one;
    the shortcut is the identity, or a 1x1 conv + BN with the stride when
    the shape changes. ReLU after the sum."""

    def __init__(self, in_channels, out_channels, stride=1, conv_cfg=None,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'),
                 with_cp=False, init_cfg=None):
        super().__init__(init_cfg)
        mid = out_channels // 4
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        self.with_cp = with_cp
        self.convs = nn.Sequential(
            SeparableConv(in_channels, mid, 1, act_cfg=act_cfg, **common),
            SeparableConv(mid, mid, stride, act_cfg=act_cfg, **common),
            SeparableConv(mid, out_channels, 1, act_cfg=None, **common))
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ConvModule(in_channels, out_channels, 1, stride,
                                       act_cfg=None, **common)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):

        def _inner(x):
            identity = x if self.shortcut is None else self.shortcut(x)
            return self.act(self.convs(x) + identity)

        if self.with_cp and x.requires_grad:
            return cp.checkpoint(_inner, x, use_reentrant=False)
        return _inner(x)


@MODELS.register_module()
class LightXception(BaseModule):
    """The light "Xception-like" backbone of Light-Head R-CNN's small
    setting (Li et al. 2017, Sec. 4.3), at the four widths the ShuffleNet V2
    paper compares with (Table 8: 40/145/305/525 MFLOPs).

    The Light-Head paper gives its layout at 1x (conv1 24, stages of
    144/288/576 channels with 4/8/4 blocks) but not the blocks; we use
    Xception's residual blocks of separable convolutions with a 4x
    bottleneck. The other widths set the stage channels so that each lands
    on the paper's FLOPs (224x224, classifier included):

    =====  =====  ======  ==================  ======  =========  ======
    stage  size   op      channels 0.5/1/1.5/2x        repeats    stride
    =====  =====  ======  ==================  ======  =========  ======
    conv1  112    3x3     12 / 24 / 24 / 32            1          2
    pool   56     max3x3                               1          2
    2      28     block   72 / 144 / 208 / 280         4          2
    3      14     block   144 / 288 / 416 / 560        8          2
    4      7      block   288 / 576 / 832 / 1120       4          2
    conv5  7      1x1     -  (none)
    =====  =====  ======  ==================  ======  =========  ======

    Block: sepconv(in -> c/4), sepconv(c/4 -> c/4, stride), sepconv(c/4 ->
    c), each sepconv = 3x3 dw conv + BN + 1x1 conv + BN (+ ReLU but the
    last); shortcut identity or 1x1 conv + BN; ReLU after the sum. The
    receptive field grows by 6 per block (three 3x3 convs), Light-Head's
    argument for the V2* variant.

    Output indices: 0, 1, 2 = stage2 (stride 8), stage3 (stride 16,
    **C4**), stage4 (stride 32, **C5**).

    Args:
        widen_factor (float): 0.5, 1.0, 1.5 or 2.0. Default: 1.0.
        out_indices, frozen_stages, conv_cfg, norm_cfg, act_cfg, norm_eval,
        with_cp, init_cfg: as :class:`ShuffleNetV2`.
    """

    #: widen_factor -> (conv1 channels, stage2/3/4 channels)
    arch_settings = {
        0.5: (12, (72, 144, 288)),
        1.0: (24, (144, 288, 576)),
        1.5: (24, (208, 416, 832)),
        2.0: (32, (280, 560, 1120)),
    }
    stage_blocks = (4, 8, 4)

    def __init__(self, widen_factor=1.0, out_indices=(2, ), frozen_stages=-1,
                 conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), norm_eval=False, with_cp=False,
                 init_cfg=None):
        super().__init__(init_cfg)
        if widen_factor not in self.arch_settings:
            raise ValueError(
                f'LightXception: unsupported widen_factor {widen_factor}; '
                f'valid: {sorted(self.arch_settings)}')
        if not set(out_indices) <= {0, 1, 2}:
            raise ValueError(f'LightXception: out_indices {out_indices} '
                             'must be in 0..2 (stage2, stage3, stage4)')
        if frozen_stages not in range(-1, 4):
            raise ValueError(
                f'frozen_stages must be in -1..3, got {frozen_stages}')
        self.widen_factor = widen_factor
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        stem, stage_channels = self.arch_settings[widen_factor]
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = ConvModule(3, stem, 3, 2, 1, **common)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layers = nn.ModuleList()
        in_channels = stem
        for channels, blocks in zip(stage_channels, self.stage_blocks):
            self.layers.append(nn.Sequential(*[
                XceptionBlock(in_channels if i == 0 else channels, channels,
                              stride=2 if i == 0 else 1, with_cp=with_cp,
                              **common) for i in range(blocks)
            ]))
            in_channels = channels
        self.out_channels = tuple(stage_channels)

    def init_weights(self):
        if not init_from_pretrained(self):
            super().init_weights()

    forward = ShuffleNetV2.forward
    _freeze_stages = ShuffleNetV2._freeze_stages

    def train(self, mode=True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
