"""ShuffleNet V2 and ShuffleNet V2* (Ma et al., ECCV 2018) for MMDetection."""
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule

from mmdet.registry import MODELS
from .base import BaseBackbone, BaseUnit
from .converters import SHUFFLENET_V2_CONVERTERS
from .pretrained import init_from_pretrained


def channel_shuffle(x, groups):
    """Channel shuffle (ShuffleNet V1, Sec. 3.1).

    With ``groups`` g and ``c = g * n`` channels, output channel ``i * g + j``
    is input channel ``j * n + i``: the channels of every group are spread
    over all the groups of the next grouped convolution.

    Args:
        x (Tensor): (N, C, H, W), C divisible by ``groups``.
        groups (int): number of groups.

    Returns:
        Tensor: (N, C, H, W), contiguous.
    """
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(
        b, c, h, w)


def concat_shuffle(x1, x2):
    """``channel_shuffle(torch.cat((x1, x2), 1), 2)``, written in one copy.

    The ShuffleNet V2 unit ends with "concat, then channel shuffle" with 2
    groups (paper Fig. 3c/d), which interleaves the channels of the two
    halves: ``x1[0], x2[0], x1[1], x2[1], ...``. Stacking on a new axis after
    the channels and merging the two axes writes that order directly,
    instead of writing the concatenation and then copying it again to
    shuffle (guideline G4: fewer element-wise operations).

    Args:
        x1, x2 (Tensor): (N, C, H, W) each, same shape.

    Returns:
        Tensor: (N, 2C, H, W).
    """
    return torch.stack((x1, x2), dim=2).flatten(1, 2)


class ShuffleUnitV2(BaseUnit):
    """The ShuffleNet V2 building block (paper Fig. 3c; Fig. 3d for stride 2).

    - stride 1: channel split into halves ``x1, x2``; ``x2`` goes through
      ``branch2`` = 1x1 conv - 3x3 depthwise conv - 1x1 conv, ``x1`` passes
      unchanged; concat and shuffle (2 groups). Channels are kept.
    - stride 2: no split; ``branch1`` (3x3 depthwise conv /2 - 1x1 conv) and
      ``branch2`` (1x1 conv - 3x3 depthwise conv /2 - 1x1 conv) both see the
      whole input and give ``out_channels // 2`` channels each.

    ``extra_dw=True`` gives the ShuffleNet V2* unit (paper Sec. 4.2): one more
    3x3 depthwise conv (+BN, no activation, stride 1), ``extra_dw``, applied
    to whatever enters the convolutional branches before their first 1x1
    conv: ``x2`` at stride 1, the whole input (shared by both branches) at
    stride 2; see :class:`ShuffleNetV2Star` for the reasons.

    The key names match mmpretrain's ShuffleNet V2 (``branch1.i``,
    ``branch2.i``, ConvModules); ``extra_dw`` is kept outside ``branch2`` so
    that a V2 checkpoint loads into V2* with only the extra convs missing.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels (even; equal to ``in_channels``
            at stride 1).
        stride (int): 1 or 2. Default: 1.
        extra_dw (bool): add the V2* depthwise conv. Default: False.
        kernel_size (int): side of the branches' depthwise convs (not of
            ``extra_dw``); 5 in ThunderNet's SNet. Default: 3.
        conv_cfg (dict, optional): convolution config. Default: None.
        norm_cfg (dict): normalisation config. Default: ``dict(type='BN')``.
        act_cfg (dict): activation config. Default: ``dict(type='ReLU')``.
        with_cp (bool): gradient checkpointing (saves memory, costs a second
            forward in backward). Default: False.
        init_cfg (dict, optional): initialisation config. Default: None.
    """

    def __init__(self, in_channels, out_channels, stride=1, extra_dw=False,
                 kernel_size=3, conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), with_cp=False, init_cfg=None):
        super().__init__(with_cp, init_cfg)
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride}')
        if out_channels % 2:
            raise ValueError(f'out_channels must be even, got {out_channels}')
        if stride == 1 and in_channels != out_channels:
            raise ValueError('a stride-1 unit keeps its channels, got '
                             f'{in_channels} -> {out_channels}')
        self.stride = stride
        branch_channels = out_channels // 2
        # At stride 1 the convolutional branch sees one half of the input.
        main_in = in_channels if stride == 2 else branch_channels
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)

        def depthwise(channels, s, k=kernel_size):
            return ConvModule(channels, channels, k, s, k // 2,
                              groups=channels, act_cfg=None, **common)

        self.extra_dw = depthwise(main_in, 1, 3) if extra_dw else None
        if stride == 2:
            self.branch1 = nn.Sequential(
                depthwise(in_channels, 2),
                ConvModule(in_channels, branch_channels, 1, act_cfg=act_cfg,
                           **common))
        self.branch2 = nn.Sequential(
            ConvModule(main_in, branch_channels, 1, act_cfg=act_cfg,
                       **common),
            depthwise(branch_channels, stride),
            ConvModule(branch_channels, branch_channels, 1, act_cfg=act_cfg,
                       **common))

    def _forward(self, x):
        if self.stride == 2:
            if self.extra_dw is not None:
                x = self.extra_dw(x)
            return concat_shuffle(self.branch1(x), self.branch2(x))
        x1, x2 = x.chunk(2, dim=1)  # views, no copy
        if self.extra_dw is not None:
            x2 = self.extra_dw(x2)
        return concat_shuffle(x1, self.branch2(x2))


@MODELS.register_module()
class ShuffleNetV2(BaseBackbone):
    """ShuffleNet V2 (Ma et al., ECCV 2018) as an MMDetection backbone.

    The architecture of the paper's Table 5: conv1 3x3/2 (24 channels), max
    pool 3x3/2, stages 2/3/4 of 4/8/4 :class:`ShuffleUnitV2` (the first of
    each with stride 2), conv5 1x1.

    =====  ============  =====  ======  ======
    width  stage2/3/4    conv5  FLOPs   params
    =====  ============  =====  ======  ======
    0.5x   48/96/192     1024   41M     1.4M
    1.0x   116/232/464   1024   146M    2.3M
    1.5x   176/352/704   1024   299M    3.5M
    2.0x   244/488/976   2048   591M    7.4M
    =====  ============  =====  ======  ======

    (FLOPs and params as reported in Table 5, at 224x224 with the
    classifier, which this backbone does not have.)

    Output indices (``out_indices``), the same for ShuffleNet V1:

    - 0: stage2, stride 8;
    - 1: stage3, stride 16 (**C4**: the RPN input of Light-Head R-CNN);
    - 2: stage4, stride 32;
    - 3: conv5, stride 32 (**C5**: the input of Light-Head's thin feature
      map; ShuffleNet V1 has no conv5 and uses index 2).

    Checkpoints: the key layout is mmpretrain's (``conv1``,
    ``layers.{0,1,2}.j.branch{1,2}.k``, ``layers.3`` = conv5), so mmpretrain
    classifiers and this backbone's own checkpoints load as they are, and
    ``init_cfg=dict(type='Pretrained', checkpoint=...)`` also accepts a
    torchvision ``shufflenet_v2_x*`` state dict (converted when loaded, see
    ``converters.py`` and ``tools/model_converters/``).

    Args:
        widen_factor (float): 0.5, 1.0, 1.5 or 2.0 (Table 5). Default: 1.0.
        out_indices (Sequence[int]): outputs to return, see above.
            Default: (3, ).
        frozen_stages (int): -1 freezes nothing; 0 freezes conv1 (the max
            pool has no weights); k in 1..3 freezes conv1 and the first k
            stages. Frozen modules get ``requires_grad=False`` and stay in
            eval mode. Default: -1.
        conv_cfg (dict, optional): convolution config. Default: None.
        norm_cfg (dict): normalisation config. Default: ``dict(type='BN')``.
        act_cfg (dict): activation config. Default: ``dict(type='ReLU')``.
        norm_eval (bool): keep all BN layers in eval mode (frozen
            statistics) in training, as detection fine-tuning does.
            Default: False.
        with_cp (bool): gradient checkpointing of every unit. Default: False.
        init_cfg (dict or list[dict], optional): initialisation config;
            ``dict(type='Pretrained', checkpoint=PATH, prefix=None)`` loads
            ImageNet weights in our, mmpretrain's or torchvision's layout.
            Default: None (Kaiming initialisation).

    Attributes:
        out_channels (tuple[int]): channels of out_index 0, 1, 2, 3.
    """

    #: widen_factor -> (stage2/3/4 channels, conv5 channels); Table 5.
    arch_settings = {
        0.5: ((48, 96, 192), 1024),
        1.0: ((116, 232, 464), 1024),
        1.5: ((176, 352, 704), 1024),
        2.0: ((244, 488, 976), 2048),
    }
    #: units per stage (Table 5); the first of each has stride 2.
    stage_blocks = (4, 8, 4)
    stem_channels = 24
    out_names = ('stage2', 'stage3', 'stage4', 'conv5')
    #: ShuffleNet V2* (see :class:`ShuffleNetV2Star`).
    extra_dw = False

    def __init__(self, widen_factor=1.0, out_indices=(3, ), frozen_stages=-1,
                 conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), norm_eval=False, with_cp=False,
                 init_cfg=None):
        self._check_choice('widen_factor', widen_factor, self.arch_settings)
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp,
                         init_cfg)
        self.widen_factor = widen_factor
        stage_channels, conv5_channels = self.arch_settings[widen_factor]
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.conv1 = ConvModule(3, self.stem_channels, 3, 2, 1, **common)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layers = nn.ModuleList()
        in_channels = self.stem_channels
        for channels, num_units in zip(stage_channels, self.stage_blocks):
            units = []
            for i in range(num_units):
                units.append(
                    ShuffleUnitV2(in_channels, channels,
                                  stride=2 if i == 0 else 1,
                                  extra_dw=self.extra_dw, with_cp=with_cp,
                                  **common))
                in_channels = channels
            self.layers.append(nn.Sequential(*units))
        # conv5, index 3 as in mmpretrain.
        self.layers.append(
            ConvModule(in_channels, conv5_channels, 1, **common))
        self.out_channels = (*stage_channels, conv5_channels)

    def init_weights(self):
        """Initialise, or load the ``Pretrained`` checkpoint of ``init_cfg``.

        - ``init_cfg=None``: Kaiming normal convs (fan-out, ReLU), BN 1/0;
        - ``dict(type='Pretrained', checkpoint=...)``, or a list holding
          one (its other entries applied first): loaded by
          :func:`~.pretrained.load_pretrained`, in any layout of
          ``SHUFFLENET_V2_CONVERTERS`` (torchvision's is recognised);
        - any other ``init_cfg``: applied by mmengine.

        The V2* extra depthwise convs start as the identity in every case
        unless the checkpoint has them.
        """
        if self.init_cfg is None:
            self._kaiming_init()
        # A checkpoint's list entries (init_cfg as a list) are applied
        # before the identity, the checkpoint after it.
        if not init_from_pretrained(self, SHUFFLENET_V2_CONVERTERS,
                                    before_load=self._extra_dw_identity):
            super().init_weights()
            self._extra_dw_identity()

    def _extra_dw_identity(self):
        for m in self.modules():
            if isinstance(m, ShuffleUnitV2) and m.extra_dw is not None:
                conv = m.extra_dw.conv
                nn.init.dirac_(conv.weight, groups=conv.groups)


@MODELS.register_module()
class ShuffleNetV2Star(ShuffleNetV2):
    """ShuffleNet V2* (paper Sec. 4.2, Table 7).

    ShuffleNet V2 with "an additional 3x3 depthwise convolution before the
    first pointwise convolution in each building block", to enlarge the
    receptive field for detection (Sec. 4.2: 7 for Xception's building
    block against 3 for V2's; 5 with the extra conv). The extra conv is a
    3x3 depthwise conv, stride 1, with BN and no activation (as V2's own
    depthwise convs).

    Where it goes in the stride-2 unit is not said in the paper. There the
    input feeds two branches, the shortcut (3x3 dw /2 - 1x1) and the main
    branch (1x1 - 3x3 dw /2 - 1x1). We put the extra conv on the unit's
    input, before the split into branches, so both branches read it:

    - receptive field: every output channel of the unit gains it. Put only
      before the main branch's 1x1, the shortcut half of the channels would
      keep a 3x3 window at every stride-2 unit; on the shortcut, the two
      linear depthwise convs (extra, then 3x3 /2) compose into a 5x5 /2
      depthwise filter.
    - cost: the same as in the main branch alone: one 3x3 depthwise conv on
      the input channels at the input resolution (9 multiply-adds per input
      channel and pixel; in total about +5M multiply-adds at 1x, 224x224,
      i.e. "a few" on 146M). Each unit gets exactly one more depthwise conv,
      stride-1 and stride-2 alike.

    At stride 1 the extra conv is on ``x2``, the half that enters the
    convolutional branch; the identity half still passes untouched (no
    element-wise work, guideline G4 of Sec. 3).

    The extra convs are separate modules (``layers.i.j.extra_dw``) and start
    as the identity (Dirac kernel, BN 1/0): a ShuffleNet V2 ImageNet
    checkpoint (e.g. torchvision's) loads into V2* with only them missing,
    and V2* then computes what V2 computes while BN is in eval mode.

    Args: as :class:`ShuffleNetV2`.
    """

    extra_dw = True
