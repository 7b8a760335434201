import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from mmdet.registry import MODELS


class _RowConv2d(nn.Conv2d):
    """A 1 x k ``nn.Conv2d`` that, when training on CPU, runs as the k x 1
    convolution of the transposed map.

    Same parameters, state dict and outputs as ``nn.Conv2d`` (the two
    computations give bit-identical outputs); only the speed differs. On CPU,
    oneDNN's backward of a 1 x k convolution with many input channels is
    slower than that of the same convolution run as k x 1 on the
    transposed map (1.4-2.3x, measured): for the demo's 1024 -> 64 conv on a 4 x 1024 x 11 x 13
    C5, forward + backward took 48 ms as 1 x 15 and 21 ms as 15 x 1; at
    800 x 1200 (25 x 38) 197 vs 145 ms. Inference, exports and other
    devices run the plain convolution.
    """

    def forward(self, x):
        if not (self.training and x.device.type == 'cpu') or \
                self.padding_mode != 'zeros' or isinstance(self.padding, str):
            return super().forward(x)
        y = F.conv2d(x.transpose(2, 3), self.weight.transpose(2, 3),
                     self.bias, self.stride[::-1], self.padding[::-1],
                     self.dilation[::-1], self.groups)
        return y.transpose(2, 3)


@MODELS.register_module()
class LargeSeparableConv(BaseModule):
    """Light-Head R-CNN's "large separable convolution" (Li et al. 2017,
    Sec. 3; ``global_context_module`` in the official code): makes the thin
    feature map that the position-sensitive RoI pooling reads.

    Two branches, summed, then ReLU::

        A: k x 1 conv (C_mid) -> 1 x k conv (C_out)
        B: 1 x k conv (C_mid) -> k x 1 conv (C_out)

    No normalisation layers; weights initialised N(0, 0.01) and biases 0, as
    in the official code, where the backbone is ImageNet-initialised.

    Trained from scratch (the embedded demo), that ReLU dies: on the shapes
    set after 600 iterations (AdamW, 40M backbone) 96% of the thin map was
    exactly 0 (pre-activation mean -18.8), and with SGD (lr 0.02) the dead
    share rose from 50% to 77% in 60 iterations. ``norm_cfg`` puts a
    normalisation layer on the sum, before the ReLU, which keeps about half
    of the map alive; a BN there folds into the two last convolutions at
    inference (:func:`shufflenet_det.deploy.fold_batchnorm`).

    On CPU at 800x1200 this layer costs about as many multiply-adds as a
    140 MFLOPs backbone (C5 is 25 x 38, k = 15) but runs as four dense
    convolutions, so it takes a small share of the time.

    Args:
        in_channels (int): channels of the input (C5).
        mid_channels (int): C_mid; 64 in the small setting (Table 7's
            detectors), 256 in the large one. Default: 64.
        out_channels (int): C_out = 10 x 7 x 7 = 490: 10 channels per bin of
            the 7x7 PSRoI pooling grid. Default: 490.
        kernel_size (int): k. Default: 15.
        norm_cfg (dict, optional): normalisation of the sum before the
            ReLU (e.g. ``dict(type='BN')``); None, as the paper. Default:
            None.
    """

    def __init__(self, in_channels, mid_channels=64, out_channels=490,
                 kernel_size=15, norm_cfg=None,
                 init_cfg=dict(type='Normal', layer='Conv2d', std=0.01)):
        super().__init__(init_cfg)
        if kernel_size % 2 != 1:
            raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        k, p = kernel_size, kernel_size // 2
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.branch_a = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, (k, 1), padding=(p, 0)),
            _RowConv2d(mid_channels, out_channels, (1, k), padding=(0, p)))
        self.branch_b = nn.Sequential(
            _RowConv2d(in_channels, mid_channels, (1, k), padding=(0, p)),
            nn.Conv2d(mid_channels, out_channels, (k, 1), padding=(p, 0)))
        self.norm = None if norm_cfg is None else \
            build_norm_layer(norm_cfg, out_channels)[1]
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        # (B, in, H, W) -> (B, out, H, W)
        x = self.branch_a(x) + self.branch_b(x)
        if self.norm is not None:
            x = self.norm(x)
        return self.relu(x)
