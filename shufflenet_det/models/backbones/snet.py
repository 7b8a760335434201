"""SNet, ThunderNet's backbones (Qin et al., ICCV 2019, Sec. 3.1, Table 1),
for MMDetection."""
import torch.nn as nn
from mmcv.cnn import ConvModule

from mmdet.registry import MODELS
from .base import BaseBackbone
from .pretrained import init_from_pretrained
from .shufflenet_v2 import ShuffleUnitV2


@MODELS.register_module()
class SNet(BaseBackbone):
    """SNet49 / SNet146 / SNet535 (ThunderNet, paper Sec. 3.1, Table 1).

    ShuffleNet V2 (:class:`ShuffleUnitV2`, 4/8/4 units per stage, the first
    of each with stride 2) with every 3x3 depthwise conv replaced by a 5x5
    one (paper Sec. 3.1; qinzheng93/ThunderNet ``thundernet/ShuffleNetV2.py``
    builds its blocks with ``kernel_size=5``, the stride-2 shortcut's
    depthwise conv included), and the widths of Table 1:

    ======  =====  ==============  =====  ===================
    arch    conv1  stage2/3/4      conv5  FLOPs (paper) at 224
    ======  =====  ==============  =====  ===================
    49      24     60/120/240      512    49M
    146     24     132/264/528     --     146M
    535     48     248/496/992     --     535M
    ======  =====  ==============  =====  ===================

    SNet49 compresses ShuffleNet V2's conv5 to 512 channels; SNet146 and
    SNet535 have no conv5 and spend those FLOPs on the early stages (paper
    Sec. 3.1; the official SNet146, ``thundernet/ShuffleNetV2.py`` and
    ``snet-training/network.py``, ends at the 528-channel stage4). FLOPs:
    multiply-adds at 224x224 with a 1000-class fc, as the paper counts them
    (``shufflenet_det.benchmark.complexity``).

    Output indices (``out_indices``):

    - 0: stage2, stride 8;
    - 1: stage3, stride 16 (**C4**, CEM's first input);
    - 2: stage4, stride 32 (**C5** of SNet146 / SNet535);
    - 3: conv5, stride 32 (**C5** of SNet49; SNet49 only).

    ``out_indices=None`` selects (C4, C5): ``(1, 3)`` for SNet49, ``(1, 2)``
    otherwise. For SNet49, C5 is the conv5 output, the network's last
    feature, as the project's Light-Head cells take C5 after conv5 (Table 1
    lists conv5 as part of SNet49; the official code has no SNet49 to say
    otherwise).

    The key layout is that of :class:`ShuffleNetV2` (``conv1``,
    ``layers.{0,1,2}.j.branch{1,2}.k``, ``layers.3`` = conv5), so
    checkpoints of the project's pretraining (configs/pretrain/snet*.py,
    mmpretrain ``backbone.`` keys) load with ``init_cfg=dict(
    type='Pretrained', checkpoint=...)``. The official release's layout
    (``first_conv``, ``stage.i.j.branch``) is not converted.

    Args:
        arch (int): 49, 146 or 535. Default: 146.
        out_indices (Sequence[int], optional): outputs, see above.
            Default: None (C4, C5).
        frozen_stages (int): -1 freezes nothing; 0 freezes conv1; k in 1..3
            freezes conv1 and the first k stages. Default: -1.
        conv_cfg (dict, optional): convolution config. Default: None.
        norm_cfg (dict): normalisation config. Default: ``dict(type='BN')``.
        act_cfg (dict): activation config. Default: ``dict(type='ReLU')``.
        norm_eval (bool): keep all BN layers in eval mode in training.
            Default: False.
        with_cp (bool): gradient checkpointing of every unit. Default: False.
        init_cfg (dict or list[dict], optional): ``dict(type='Pretrained',
            checkpoint=PATH)`` loads weights in this layout (or with
            ``backbone.`` keys). Default: None (Kaiming initialisation).

    Attributes:
        out_channels (tuple[int]): channels of each out index.
    """

    #: arch -> (conv1 channels, stage2/3/4 channels, conv5 channels or None);
    #: paper Table 1.
    arch_settings = {
        49: (24, (60, 120, 240), 512),
        146: (24, (132, 264, 528), None),
        535: (48, (248, 496, 992), None),
    }
    #: units per stage (paper Table 1: 1 + 3, 1 + 7, 1 + 3).
    stage_blocks = (4, 8, 4)
    #: 5x5 depthwise convs (paper Sec. 3.1).
    kernel_size = 5
    out_indices_note = 'conv5 (3) exists in SNet49 only'

    def __init__(self, arch=146, out_indices=None, frozen_stages=-1,
                 conv_cfg=None, norm_cfg=dict(type='BN'),
                 act_cfg=dict(type='ReLU'), norm_eval=False, with_cp=False,
                 init_cfg=None):
        self._check_choice('arch', arch, self.arch_settings)
        stem, stage_channels, conv5_channels = self.arch_settings[arch]
        names = ('stage2', 'stage3', 'stage4')
        if conv5_channels:
            names += ('conv5', )
        # Set before BaseBackbone checks out_indices against it (a plain
        # attribute: allowed before nn.Module.__init__).
        self.out_names = names
        if out_indices is None:
            out_indices = (1, len(names) - 1)
        super().__init__(out_indices, frozen_stages, norm_eval, with_cp,
                         init_cfg)
        self.arch = arch
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.conv1 = ConvModule(3, stem, 3, 2, 1, **common)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layers = nn.ModuleList()
        in_channels = stem
        for channels, num_units in zip(stage_channels, self.stage_blocks):
            units = []
            for i in range(num_units):
                units.append(
                    ShuffleUnitV2(in_channels, channels,
                                  stride=2 if i == 0 else 1,
                                  kernel_size=self.kernel_size,
                                  with_cp=with_cp, **common))
                in_channels = channels
            self.layers.append(nn.Sequential(*units))
        self.out_channels = tuple(stage_channels)
        if conv5_channels:
            self.layers.append(
                ConvModule(in_channels, conv5_channels, 1, **common))
            self.out_channels += (conv5_channels, )

    def init_weights(self):
        """Kaiming initialisation (``init_cfg=None``), or the ``Pretrained``
        checkpoint of ``init_cfg``, or mmengine's handling of any other."""
        if self.init_cfg is None:
            self._kaiming_init()
        if not init_from_pretrained(self):
            super().init_weights()
