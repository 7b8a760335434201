"""ThunderNet's Context Enhancement Module and Spatial Attention Module
(Qin et al., ICCV 2019, Sec. 3.2)."""
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmdet.registry import MODELS


@MODELS.register_module()
class ContextEnhancementModule(BaseModule):
    """CEM: the thin feature map from C4, C5 and the global context of C5.

    Paper Sec. 3.2 (Fig. 3): each of C4, C5 and C_glb (the global average
    pool of C5) is squeezed by a 1x1 conv to ``alpha x p x p = 5 x 7 x 7 =
    245`` channels; C5's is upsampled 2x, C_glb's broadcast, and the three
    are summed::

        C4  (B, c4, H, W)       -> conv 1x1          -> (B, 245, H, W)
        C5  (B, c5, H/2, W/2)   -> conv 1x1, nearest  -> (B, 245, H, W)
        C5  -> global avg pool  -> conv 1x1 (= fc)    -> (B, 245, 1, 1)
        sum (broadcast)                               -> (B, 245, H, W)

    As qinzheng93/ThunderNet ``thundernet/ThunderNet_cem_neck.py``: the three
    convs have biases and no BN or activation, the upsampling is nearest to
    C4's size (2x when the input side is a multiple of 32), and they start
    Xavier-uniform. (The paper's "fc" on C_glb is this 1x1 conv.)

    Args:
        in_channels (Sequence[int]): channels of (C4, C5).
        out_channels (int): channels of the thin map. Default: 245.
        init_cfg (dict): Default: Xavier-uniform convs (official code).
    """

    def __init__(self, in_channels, out_channels=245,
                 init_cfg=dict(type='Xavier', layer='Conv2d',
                               distribution='uniform')):
        super().__init__(init_cfg)
        if len(in_channels) != 2:
            raise ValueError('ContextEnhancementModule reads (C4, C5); got '
                             f'in_channels={in_channels}')
        c4_channels, c5_channels = in_channels
        self.in_channels = tuple(in_channels)
        self.out_channels = out_channels
        self.c4_conv = nn.Conv2d(c4_channels, out_channels, 1)
        self.c5_conv = nn.Conv2d(c5_channels, out_channels, 1)
        self.glb_conv = nn.Conv2d(c5_channels, out_channels, 1)

    def forward(self, inputs):
        """inputs: (C4, C5). Returns a one-element tuple: the thin map
        (B, out_channels, H4, W4)."""
        c4, c5 = inputs
        c4_out = self.c4_conv(c4)
        c5_out = F.interpolate(self.c5_conv(c5), size=c4_out.shape[-2:],
                               mode='nearest')
        glb_out = self.glb_conv(c5.mean((2, 3), keepdim=True))
        return (c4_out + c5_out + glb_out, )


@MODELS.register_module()
class SpatialAttentionModule(BaseModule):
    """SAM: the CEM map re-weighted by the RPN's feature (paper Sec. 3.2):
    ``F_SAM = F_CEM * sigmoid(theta(F_RPN))``, theta a 1x1
    conv from the RPN's 256 channels to the CEM's 245.

    theta is a bias-free 1x1 conv followed by BN, as qinzheng93/ThunderNet
    ``thundernet/ThunderNet_rpn_head.py`` (``sam_convs``). Through the
    product, the R-CNN's loss reaches the RPN's convs (paper: "SAM enables
    extra gradient flow from R-CNN subnet to RPN").

    Args:
        in_channels (int): channels of the RPN feature. Default: 256.
        out_channels (int): channels of the CEM map. Default: 245.
        norm_cfg (dict): normalisation after theta. Default: BN.
        init_cfg (dict, optional): Default: None (mmcv's ConvModule
            initialisation).
    """

    def __init__(self, in_channels=256, out_channels=245,
                 norm_cfg=dict(type='BN'), init_cfg=None):
        super().__init__(init_cfg)
        self.out_channels = out_channels
        self.theta = ConvModule(in_channels, out_channels, 1,
                                norm_cfg=norm_cfg, act_cfg=None)

    def forward(self, cem_feat, rpn_feat):
        """cem_feat (B, out_channels, H, W), rpn_feat (B, in_channels, H, W)
        -> (B, out_channels, H, W)."""
        return cem_feat * self.theta(rpn_feat).sigmoid()
