import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from .converters import SHUFFLENET_V1_CONVERTERS
from .pretrained import init_from_pretrained
from .shufflenet_v2 import ShuffleNetV2, channel_shuffle


class ShuffleUnitV1(BaseModule):
    """The ShuffleNet V1 unit (Zhang et al., CVPR 2018, Fig. 2b/c).

    1x1 group conv - shuffle - 3x3 depthwise conv (stride) - 1x1 group
    conv; stride 1 adds the input, stride 2 concatenates the 3x3 average
    pooled input. ReLU after the merge.

    Args:
        in_channels, out_channels (int): unit input and output channels.
        groups (int): groups of the 1x1 convs.
        stride (int): 1 or 2.
        first_group_conv (bool): False for the first unit of stage 2, whose
            input (24 channels) is too narrow to group (V1 Sec. 3.3).
    """

    def __init__(self, in_channels, out_channels, groups, stride=1,
                 first_group_conv=True, conv_cfg=None,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'),
                 with_cp=False, init_cfg=None):
        super().__init__(init_cfg)
        self.stride = stride
        self.with_cp = with_cp
        branch_out = out_channels - in_channels if stride == 2 else \
            out_channels
        if stride == 1 and in_channels != out_channels:
            raise ValueError('a stride-1 unit keeps its channels')
        mid = out_channels // 4
        self.first_groups = groups if first_group_conv else 1
        self.groups = groups
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        self.g_conv_1x1_compress = ConvModule(
            in_channels, mid, 1, groups=self.first_groups, act_cfg=act_cfg,
            **common)
        self.depthwise_conv3x3_bn = ConvModule(
            mid, mid, 3, stride, 1, groups=mid, act_cfg=None, **common)
        self.g_conv_1x1_expand = ConvModule(
            mid, branch_out, 1, groups=groups, act_cfg=None, **common)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):

        def _inner(x):
            out = self.g_conv_1x1_compress(x)
            if self.first_groups > 1:
                out = channel_shuffle(out, self.first_groups)
            out = self.g_conv_1x1_expand(self.depthwise_conv3x3_bn(out))
            if self.stride == 2:
                out = torch.cat(
                    (F.avg_pool2d(x, 3, 2, 1), out), dim=1)
            else:
                out = out + x
            return self.act(out)

        if self.with_cp and x.requires_grad:
            return cp.checkpoint(_inner, x, use_reentrant=False)
        return _inner(x)


@MODELS.register_module()
class ShuffleNetV1(BaseModule):
    """ShuffleNet V1 (Zhang et al., CVPR 2018), as an MMDetection backbone.

    conv1 3x3/2, max pool 3x3/2, stages 2/3/4 of 4/8/4 units (the first of
    each with stride 2). Stage channels at 1x (V1 Table 1):

    ======  ==============
    groups  stage2/3/4
    ======  ==============
    1       144/288/576
    2       200/400/800
    3       240/480/960
    4       272/544/1088
    8       384/768/1536
    ======  ==============

    ``widen_factor`` s multiplies them (Table 7 uses g=3 at 0.5/1/1.5/2x:
    38/140/292/524 MFLOPs); conv1 has 24 channels, 12 at 0.5x and 48 at
    2x as in the official models.

    Output indices: 0, 1, 2 = stage2 (stride 8), stage3 (stride 16,
    **C4**), stage4 (stride 32, **C5**: V1 has no conv5).

    Args:
        groups (int): 1, 2, 3, 4 or 8. Default: 3.
        widen_factor (float): 0.5, 1.0, 1.5 or 2.0. Default: 1.0.
        out_indices, frozen_stages, conv_cfg, norm_cfg, act_cfg, norm_eval,
        with_cp, init_cfg: as :class:`ShuffleNetV2` (frozen_stages 0 freezes
            conv1, k the first k stages too).
    """

    arch_settings = {
        1: (144, 288, 576),
        2: (200, 400, 800),
        3: (240, 480, 960),
        4: (272, 544, 1088),
        8: (384, 768, 1536),
    }
    widen_factors = (0.5, 1.0, 1.5, 2.0)
    stage_blocks = (4, 8, 4)

    def __init__(self, groups=3, widen_factor=1.0, out_indices=(2, ),
                 frozen_stages=-1, conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), norm_eval=False, with_cp=False,
                 init_cfg=None):
        super().__init__(init_cfg)
        if groups not in self.arch_settings:
            raise ValueError(f'ShuffleNetV1: unsupported groups {groups}; '
                             f'valid: {sorted(self.arch_settings)}')
        if widen_factor not in self.widen_factors:
            raise ValueError(
                f'ShuffleNetV1: unsupported widen_factor {widen_factor}; '
                f'valid: {list(self.widen_factors)}')
        if not set(out_indices) <= {0, 1, 2}:
            raise ValueError(f'ShuffleNetV1: out_indices {out_indices} must '
                             'be in 0..2 (stage2, stage3, stage4)')
        if frozen_stages not in range(-1, 4):
            raise ValueError(
                f'frozen_stages must be in -1..3, got {frozen_stages}')
        self.groups = groups
        self.widen_factor = widen_factor
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        # Stage widths are multiples of 4 * groups (bottleneck = out / 4).
        stage_channels = [int(c * widen_factor) for c in
                          self.arch_settings[groups]]
        stem = {0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}[widen_factor]
        self.conv1 = ConvModule(3, stem, 3, 2, 1, act_cfg=act_cfg, **common)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layers = nn.ModuleList()
        in_channels = stem
        for s, (channels, blocks) in enumerate(
                zip(stage_channels, self.stage_blocks)):
            units = []
            for i in range(blocks):
                units.append(ShuffleUnitV1(
                    in_channels, channels, groups, stride=2 if i == 0 else 1,
                    first_group_conv=not (s == 0 and i == 0),
                    act_cfg=act_cfg, with_cp=with_cp, **common))
                in_channels = channels
            self.layers.append(nn.Sequential(*units))
        self.out_channels = tuple(stage_channels)

    def init_weights(self):
        if not init_from_pretrained(self, SHUFFLENET_V1_CONVERTERS):
            super().init_weights()

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    _freeze_stages = ShuffleNetV2._freeze_stages

    def train(self, mode=True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
