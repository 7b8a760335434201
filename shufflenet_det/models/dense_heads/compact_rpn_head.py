"""ThunderNet's compact RPN (Qin et al., ICCV 2019, Sec. 3.2)."""
import torch.nn as nn
from mmcv.cnn import ConvModule

from mmdet.models.utils import multi_apply
from mmdet.registry import MODELS
from .early_stop_rpn_head import EarlyStopRPNHead


@MODELS.register_module()
class CompactRPNHead(EarlyStopRPNHead):
    """mmdet's ``RPNHead`` with ThunderNet's compact RPN conv: a 5x5
    depthwise conv and a 1x1 conv to ``feat_channels`` (256) in place of
    RPNHead's 3x3 conv (paper Sec. 3.2, "we replace the original 256-channel
    3x3 conv with a 5x5 depthwise conv and a 256-channel 1x1 conv").

    Each conv has BN and ReLU, as qinzheng93/ThunderNet
    ``thundernet/ThunderNet_rpn_head.py`` (``rpn_conv``). mmdet's RPNHead
    fixes its conv at 3x3 (``_init_layers``), hence this subclass; anchors,
    losses, targets and proposals are RPNHead's (with
    :class:`EarlyStopRPNHead`'s NMS).

    The RPN feature (``rpn_conv``'s output) is also SAM's input (F_RPN of
    paper Sec. 3.2): :meth:`forward_with_features` returns it beside the scores
    and deltas, so that the detector re-weights the CEM map with the very
    tensor the RPN's scores come from and the R-CNN's gradient reaches
    ``rpn_conv`` (:class:`~shufflenet_det.models.detectors.ThunderNet`).

    Args:
        kernel_size (int): side of the depthwise conv. Default: 5.
        norm_cfg (dict): normalisation of both convs. Default: BN.
        other args: as mmdet's ``RPNHead`` (``num_convs`` must be 1).
    """

    def __init__(self, *args, kernel_size=5, norm_cfg=dict(type='BN'),
                 **kwargs):
        self.kernel_size = kernel_size
        self.norm_cfg = norm_cfg
        super().__init__(*args, **kwargs)
        if self.num_convs != 1:
            raise ValueError('CompactRPNHead has one depthwise + pointwise '
                             f'conv pair; num_convs={self.num_convs}')

    def _init_layers(self):
        k = self.kernel_size
        # inplace=False: the feature also feeds SAM, and RPNHead's
        # forward_single applies its own ReLU after rpn_conv.
        common = dict(norm_cfg=self.norm_cfg, act_cfg=dict(type='ReLU'),
                      inplace=False)
        self.rpn_conv = nn.Sequential(
            ConvModule(self.in_channels, self.in_channels, k, padding=k // 2,
                       groups=self.in_channels, **common),
            ConvModule(self.in_channels, self.feat_channels, 1, **common))
        self.rpn_cls = nn.Conv2d(self.feat_channels,
                                 self.num_base_priors * self.cls_out_channels,
                                 1)
        self.rpn_reg = nn.Conv2d(self.feat_channels,
                                 self.num_base_priors *
                                 self.bbox_coder.encode_size, 1)

    def forward_feature_single(self, x):
        """(scores, deltas, RPN feature) of one level; the feature is
        (B, feat_channels, H, W), already through BN and ReLU."""
        feat = self.rpn_conv(x)
        return self.rpn_cls(feat), self.rpn_reg(feat), feat

    def forward_single(self, x):
        cls_score, bbox_pred, _ = self.forward_feature_single(x)
        return cls_score, bbox_pred

    def forward_with_features(self, x):
        """As ``forward`` (lists of scores and deltas per level), plus the
        list of RPN features per level."""
        return multi_apply(self.forward_feature_single, x)
