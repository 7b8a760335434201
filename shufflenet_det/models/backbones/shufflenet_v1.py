"""ShuffleNet V1 (Zhang et al., CVPR 2018) for MMDetection."""
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_activation_layer

from mmdet.models.utils import make_divisible
from mmdet.registry import MODELS
from .base import BaseBackbone, BaseUnit
from .converters import SHUFFLENET_V1_CONVERTERS
from .pretrained import init_from_pretrained
from .shufflenet_v2 import channel_shuffle


class ShuffleUnitV1(BaseUnit):
    """The ShuffleNet V1 unit (V1 paper Fig. 2b; Fig. 2c for stride 2).

    1x1 group conv (compress to ``out_channels // 4``) + BN + ReLU, 3x3
    depthwise conv (stride) + BN, channel shuffle, 1x1 group conv (expand) +
    BN; stride 1 adds the input, then ReLU; stride 2 concatenates the 3x3/2
    average-pooled input and the ReLU of the branch (``out_channels -
    in_channels`` channels).

    The paper shuffles right after the first group conv; the shuffle is put
    after the depthwise conv here, as in the official release and in
    mmpretrain, whose checkpoints then load unchanged (a depthwise conv acts
    per channel, so both orders are the same network).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels (``in_channels`` at stride 1).
        groups (int): groups of the 1x1 convs.
        stride (int): 1 or 2. Default: 1.
        grouped_compress (bool): group the first 1x1 conv. False for the
            first unit of stage 2, whose 24-channel input is too narrow to be
            split (V1 paper Sec. 3.3). Default: True.
        conv_cfg (dict, optional): convolution config. Default: None.
        norm_cfg (dict): normalisation config. Default: ``dict(type='BN')``.
        act_cfg (dict): activation config. Default: ``dict(type='ReLU')``.
        with_cp (bool): gradient checkpointing. Default: False.
        init_cfg (dict, optional): initialisation config. Default: None.
    """

    def __init__(self, in_channels, out_channels, groups, stride=1,
                 grouped_compress=True, conv_cfg=None,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'),
                 with_cp=False, init_cfg=None):
        super().__init__(with_cp, init_cfg)
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride}')
        if stride == 1 and in_channels != out_channels:
            raise ValueError('a stride-1 unit keeps its channels, got '
                             f'{in_channels} -> {out_channels}')
        self.stride = stride
        self.groups = groups
        # The bottleneck is a quarter of the unit's output (V1 Sec. 3.3),
        # also at stride 2 where the branch gives out - in channels.
        mid = out_channels // 4
        branch_out = out_channels - in_channels if stride == 2 else \
            out_channels
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        self.g_conv_1x1_compress = ConvModule(
            in_channels, mid, 1, groups=groups if grouped_compress else 1,
            act_cfg=act_cfg, **common)
        self.depthwise_conv3x3_bn = ConvModule(
            mid, mid, 3, stride, 1, groups=mid, act_cfg=None, **common)
        self.g_conv_1x1_expand = ConvModule(
            mid, branch_out, 1, groups=groups, act_cfg=None, **common)
        if stride == 2:
            self.avgpool = nn.AvgPool2d(kernel_size=3, stride=2, padding=1)
        self.act = build_activation_layer(act_cfg)

    def _forward(self, x):
        out = self.depthwise_conv3x3_bn(self.g_conv_1x1_compress(x))
        if self.groups > 1:
            out = channel_shuffle(out, self.groups)
        out = self.g_conv_1x1_expand(out)
        if self.stride == 2:
            return torch.cat((self.avgpool(x), self.act(out)), dim=1)
        return self.act(out + x)


@MODELS.register_module()
class ShuffleNetV1(BaseBackbone):
    """ShuffleNet V1 (Zhang et al., CVPR 2018) as an MMDetection backbone.

    conv1 3x3/2, max pool 3x3/2, stages 2/3/4 of 4/8/4
    :class:`ShuffleUnitV1` (the first of each with stride 2); no final 1x1
    conv. Stage channels at 1x (V1 paper Table 1):

    ======  =============
    groups  stage2/3/4
    ======  =============
    1       144/288/576
    2       200/400/800
    3       240/480/960
    4       272/544/1088
    8       384/768/1536
    ======  =============

    ``widen_factor`` s ("ShuffleNet s x", V1 Sec. 4.1.1) scales them:
    stage2 becomes ``s * c`` rounded to a multiple of ``4 * groups`` (so the
    bottleneck, a quarter, splits into the groups), stage3/4 twice and four
    times that. conv1 has 12/24/24/48 channels at 0.5/1/1.5/2x, widened to
    16 where the stride-2 unit of stage 2 could not split its ``stage2 -
    conv1`` output channels into the groups (g = 8 at 0.5x); these are the
    official models' widths (megvii ShuffleNet-Series, g = 3 and 8), so
    their checkpoints load. The ShuffleNet V2 paper's comparisons (Tables 7
    and 8) use g = 3: 38/140/292/524 MFLOPs at 0.5/1/1.5/2x.

    Output indices (``out_indices``), as ShuffleNet V2's first three:

    - 0: stage2, stride 8;
    - 1: stage3, stride 16 (**C4**);
    - 2: stage4, stride 32 (**C5**: V1 has no conv5, so Light-Head R-CNN
      takes its thin feature map from here).

    Checkpoints: the key layout is mmpretrain's (``conv1``,
    ``layers.i.j.g_conv_1x1_compress`` ...), so mmpretrain's checkpoints load
    as they are (its 1.5x differs in conv1: 36 channels); official megvii
    checkpoints are converted when loaded (``converters.py``, also
    ``tools/model_converters/megvii2shufflenet.py``).

    Args:
        groups (int): groups of the 1x1 convs: 1, 2, 3, 4 or 8. Default: 3.
        widen_factor (float): 0.5, 1.0, 1.5 or 2.0. Default: 1.0.
        out_indices (Sequence[int]): outputs to return, see above.
            Default: (2, ).
        frozen_stages (int): -1 freezes nothing; 0 freezes conv1; k in 1..3
            freezes conv1 and the first k stages (``requires_grad=False``,
            eval mode). Default: -1.
        conv_cfg (dict, optional): convolution config. Default: None.
        norm_cfg (dict): normalisation config. Default: ``dict(type='BN')``.
        act_cfg (dict): activation config. Default: ``dict(type='ReLU')``.
        norm_eval (bool): keep all BN layers in eval mode in training.
            Default: False.
        with_cp (bool): gradient checkpointing of every unit. Default: False.
        init_cfg (dict or list[dict], optional): initialisation config;
            ``dict(type='Pretrained', checkpoint=PATH, prefix=None)`` loads
            ImageNet weights in our, mmpretrain's or the official layout.
            Default: None (Kaiming initialisation).

    Attributes:
        out_channels (tuple[int]): channels of out_index 0, 1, 2.
    """

    #: groups -> stage2/3/4 channels at 1x; V1 paper Table 1.
    arch_settings = {
        1: (144, 288, 576),
        2: (200, 400, 800),
        3: (240, 480, 960),
        4: (272, 544, 1088),
        8: (384, 768, 1536),
    }
    #: widen_factor -> conv1 channels (the official models').
    stem_channels = {0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}
    #: units per stage (V1 Table 1); the first of each has stride 2.
    stage_blocks = (4, 8, 4)
    out_names = ('stage2', 'stage3', 'stage4')
    out_indices_note = 'V1 has no conv5'

    def __init__(self, groups=3, widen_factor=1.0, out_indices=(2, ),
                 frozen_stages=-1, conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), norm_eval=False, with_cp=False,
                 init_cfg=None):
        self._check_choice('groups', groups, self.arch_settings)
        self._check_choice('widen_factor', widen_factor, self.stem_channels)
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp,
                         init_cfg)
        self.groups = groups
        self.widen_factor = widen_factor

        base = make_divisible(self.arch_settings[groups][0] * widen_factor,
                              4 * groups)
        stage_channels = (base, 2 * base, 4 * base)
        stem = self.stem_channels[widen_factor]
        stem += (base - stem) % groups  # 12 -> 16 for g = 8 at 0.5x
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)

        self.conv1 = ConvModule(3, stem, 3, 2, 1, act_cfg=act_cfg, **common)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layers = nn.ModuleList()
        in_channels = stem
        for s, (channels, num_units) in enumerate(
                zip(stage_channels, self.stage_blocks)):
            units = []
            for i in range(num_units):
                units.append(
                    ShuffleUnitV1(
                        in_channels, channels, groups,
                        stride=2 if i == 0 else 1,
                        grouped_compress=not (s == 0 and i == 0),
                        act_cfg=act_cfg, with_cp=with_cp, **common))
                in_channels = channels
            self.layers.append(nn.Sequential(*units))
        self.out_channels = stage_channels

    def init_weights(self):
        """Initialise, or load the ``Pretrained`` checkpoint of ``init_cfg``.

        - ``init_cfg=None``: Kaiming normal convs (fan-out, ReLU), BN 1/0;
        - ``dict(type='Pretrained', checkpoint=...)``, or a list holding
          one (its other entries applied first): loaded by
          :func:`~.pretrained.load_pretrained`, in any layout of
          ``SHUFFLENET_V1_CONVERTERS`` (the official one is recognised);
        - any other ``init_cfg``: applied by mmengine.
        """
        if init_from_pretrained(self, SHUFFLENET_V1_CONVERTERS):
            return
        if self.init_cfg is None:
            self._kaiming_init()
        super().init_weights()
