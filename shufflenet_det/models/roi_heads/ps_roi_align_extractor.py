import torch.nn as nn
from torchvision.ops import PSRoIAlign

from mmdet.models.roi_heads.roi_extractors import BaseRoIExtractor
from mmdet.registry import MODELS


@MODELS.register_module()
class PSRoIAlignExtractor(BaseRoIExtractor):
    """Position-sensitive RoI align on one feature map (R-FCN's PSRoI
    pooling with RoIAlign's bilinear sampling; Light-Head R-CNN Sec. 3.2).

    mmcv has no PSRoIAlign; torchvision's ``ops.PSRoIAlign`` is the real op
    (CPU and CUDA). With an input of ``out_channels * output_size ** 2``
    channels (490 = 10 x 7 x 7), bin (i, j) of every RoI averages its
    ``sampling_ratio ** 2`` bilinear samples from channel group ``i * 7 + j``,
    giving (num_rois, out_channels, 7, 7).

    Args:
        output_size (int): bins per side. Default: 7.
        sampling_ratio (int): samples per bin side. Default: 2.
        out_channels (int): channels per bin (10 in Light-Head R-CNN).
        featmap_strides (list[int]): one stride: that of the thin map (32
            when it is made from C5).
        aligned (bool): torchvision's PSRoIAlign always uses the aligned
            (half-pixel shifted) convention, so only True is accepted.
    """

    def __init__(self, output_size=7, sampling_ratio=2, out_channels=10,
                 featmap_strides=(32, ), init_cfg=None):
        if len(featmap_strides) != 1:
            raise ValueError('PSRoIAlignExtractor reads one feature map; got '
                             f'featmap_strides={featmap_strides}')
        super().__init__(
            roi_layer=dict(type=PSRoIAlign, output_size=output_size,
                           sampling_ratio=sampling_ratio),
            out_channels=out_channels, featmap_strides=list(featmap_strides),
            init_cfg=init_cfg)
        self.output_size = output_size

    def forward(self, feats, rois, roi_scale_factor=None):
        """feats: (thin map (B, out_channels * output_size**2, H, W), );
        rois: (n, 5) as (batch index, x1, y1, x2, y2) in image pixels.
        Returns (n, out_channels, output_size, output_size)."""
        feat = feats[0]
        expected = self.out_channels * self.output_size**2
        if feat.size(1) != expected:
            raise ValueError(
                f'PSRoIAlignExtractor: the feature map has {feat.size(1)} '
                f'channels; {self.out_channels} x {self.output_size}^2 = '
                f'{expected} expected')
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        if rois.numel() == 0:
            return feat.new_zeros(0, self.out_channels, self.output_size,
                                  self.output_size)
        return self.roi_layers[0](feat, rois.to(feat.dtype))
