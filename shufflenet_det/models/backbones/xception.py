import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule, build_activation_layer
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS
from .pretrained import init_from_pretrained


class SeparableConv(nn.Sequential):
    """Xception's depthwise separable convolution: a 3x3 depthwise conv
    (carrying the stride) + BN, then a 1x1 conv + BN + activation (none when
    ``act_cfg`` is None)."""

    def __init__(self, in_channels, out_channels, stride=1, conv_cfg=None,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU')):
        super().__init__(
            ConvModule(in_channels, in_channels, 3, stride, 1,
                       groups=in_channels, conv_cfg=conv_cfg,
                       norm_cfg=norm_cfg, act_cfg=None),
            ConvModule(in_channels, out_channels, 1, conv_cfg=conv_cfg,
                       norm_cfg=norm_cfg, act_cfg=act_cfg))


class XceptionBlock(BaseModule):
    """Xception's residual block of three separable convolutions, with a
    bottleneck: ``in -> out/4 -> out/4 -> out``.

    The stride sits on the first depthwise conv, so that all three 1x1 convs
    run at the output resolution. The shortcut is the identity, or, when the
    shape changes, a strided 1x1 conv + BN (Xception's entry-flow shortcut).
    The sum goes through the activation. Three 3x3 convs in a row give the
    block a 7x7 receptive field (ShuffleNet V2 paper Sec. 4.2: Xception's 7
    against ShuffleNet V2's 3, the reason for V2*).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        stride (int): 1 or 2.
        conv_cfg, norm_cfg, act_cfg (dict): as in mmcv's ConvModule.
        with_cp (bool): checkpoint the block to save memory in training.
    """

    def __init__(self, in_channels, out_channels, stride=1, conv_cfg=None,
                 norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU'),
                 with_cp=False, init_cfg=None):
        super().__init__(init_cfg)
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride}')
        mid = out_channels // 4
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        self.with_cp = with_cp
        self.convs = nn.Sequential(
            SeparableConv(in_channels, mid, stride, act_cfg=act_cfg, **common),
            SeparableConv(mid, mid, 1, act_cfg=act_cfg, **common),
            SeparableConv(mid, out_channels, 1, act_cfg=None, **common))
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ConvModule(in_channels, out_channels, 1, stride,
                                       act_cfg=None, **common)
        self.act = build_activation_layer(act_cfg)

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
    setting (Li et al. 2017, Sec. 4.2.3), at the four widths of the
    ShuffleNet V2 paper's comparison (Table 8: 40, 145, 305, 525 MFLOPs,
    224x224, classifier included), as an MMDetection backbone.

    Neither paper gives the network in text beyond "Xception-like" and its
    FLOPs, so this is our design: the ShuffleNet skeleton (conv1 3x3/2, max
    pool, three stages of 4/8/4 blocks whose first has stride 2, so that
    the stages end at strides 8/16/32 as every other Table 7 backbone) with
    Xception's residual blocks of separable convolutions
    (:class:`XceptionBlock`, bottleneck 1/4). Stage widths double from
    stage to stage, as in Xception; the width at each level is the one
    that lands on the paper's FLOPs, and it comes out as powers of two times
    the multiplier: 1x = 128/256/512 counts 144.8M (paper 145M), 1.5x
    304.6M (305M), 2x 525.4M (525M). At 0.5x the 24-channel conv1 alone
    would take a fifth of the budget; halving it with the rest gives 41.1M
    (40M). There is no 1x1 conv after stage 4: the classifier pools stage 4.

    ======  ======  ==========  ========================  =======  ======
    stage   output  op          channels 0.5x/1x/1.5x/2x  repeats  stride
    ======  ======  ==========  ========================  =======  ======
    image   224     -           3                         -        -
    conv1   112     3x3 conv    12 / 24 / 24 / 24         1        2
    pool    56      3x3 max     12 / 24 / 24 / 24         1        2
    stage2  28      block       64 / 128 / 192 / 256      1        2
            28      block       64 / 128 / 192 / 256      3        1
    stage3  14      block       128 / 256 / 384 / 512     1        2
            14      block       128 / 256 / 384 / 512     7        1
    stage4  7       block       256 / 512 / 768 / 1024    1        2
            7       block       256 / 512 / 768 / 1024    3        1
    pool    1       global avg
    fc      1       1000-way
    MFLOPs                      41.1 / 144.8 / 304.6 / 525.4
    ======  ======  ==========  ========================  =======  ======

    (block = three separable convs in -> c/4 -> c/4 -> c, residual; see
    :class:`XceptionBlock`.)

    Output indices (``out_indices``):

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

    #: widen_factor -> (conv1 channels, stage2/3/4 channels)
    arch_settings = {
        0.5: (12, (64, 128, 256)),
        1.0: (24, (128, 256, 512)),
        1.5: (24, (192, 384, 768)),
        2.0: (24, (256, 512, 1024)),
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
        for i in out_indices:
            if i not in range(3):
                raise ValueError(
                    f'LightXception: out_indices {tuple(out_indices)} must '
                    'be in 0..2 (stage2, stage3, stage4)')
        if frozen_stages not in range(-1, 4):
            raise ValueError(
                f'frozen_stages must be in -1..3, got {frozen_stages}')
        self.widen_factor = widen_factor
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        stem, stage_channels = self.arch_settings[widen_factor]
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.conv1 = ConvModule(3, stem, 3, 2, 1, **common)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layers = nn.ModuleList()
        in_channels = stem
        for channels, blocks in zip(stage_channels, self.stage_blocks):
            self.layers.append(nn.Sequential(*[
                XceptionBlock(in_channels if i == 0 else channels, channels,
                              stride=2 if i == 0 else 1, with_cp=with_cp,
                              **common) for i in range(blocks)
            ]))
            in_channels = channels
        #: channels of each output index
        self.out_channels = tuple(stage_channels)

    def init_weights(self):
        if init_from_pretrained(self):
            return
        super().init_weights()
        if self.init_cfg is None:
            # As ShuffleNetV2: Kaiming for convs, BN at 1/0.
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
        frozen = [self.conv1] if self.frozen_stages >= 0 else []
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
