from torchvision.ops import PSRoIAlign

from mmdet.models.roi_heads.roi_extractors import BaseRoIExtractor
from mmdet.registry import MODELS


@MODELS.register_module()
class PSRoIAlignExtractor(BaseRoIExtractor):
    """Position-sensitive RoI align on one feature map (R-FCN's PSRoI
    pooling with RoIAlign's bilinear sampling; Light-Head R-CNN Sec. 3,
    "PSRoIAlign").

    mmcv has no PSRoIAlign (mmdet's ``roi_layer=dict(type=...)`` looks the
    type up in ``mmcv.ops``), so the layer here is torchvision's
    ``ops.PSRoIAlign`` (CPU and CUDA). The input has ``out_channels x
    output_size ** 2`` channels (490 = 10 x 7 x 7); output channel c of bin
    (i, j) of every RoI averages ``sampling_ratio ** 2`` bilinear samples of
    input channel ``(c * output_size + i) * output_size + j``, which gives
    (num_rois, out_channels, output_size, output_size). Like RoIAlign with
    ``aligned=True``, torchvision shifts RoI coordinates by half a pixel.

    Args:
        output_size (int): bins per side. Default: 7.
        sampling_ratio (int): samples per bin side. Default: 2.
        out_channels (int): channels per bin; 10 in Light-Head R-CNN.
            Default: 10.
        featmap_strides (Sequence[int]): one stride, the thin map's (32 when
            it is made from C5 without atrous convolution, as in the small
            setting). Default: (32, ).
        init_cfg (dict, optional): as BaseModule. Default: None.
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
        #: channels of the feature map read: out_channels per bin.
        self.in_channels = out_channels * output_size**2

    def forward(self, feats, rois, roi_scale_factor=None):
        """feats: (thin map (B, in_channels, H, W), ); rois: (n, 5) as
        (batch index, x1, y1, x2, y2) in input-image pixels.
        Returns (n, out_channels, output_size, output_size)."""
        feat = feats[0]
        if feat.size(1) != self.in_channels:
            raise ValueError(
                f'PSRoIAlignExtractor: the feature map has {feat.size(1)} '
                f'channels; {self.out_channels} x {self.output_size}^2 = '
                f'{self.in_channels} expected')
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        if rois.numel() == 0:
            return feat.new_zeros(0, self.out_channels, self.output_size,
                                  self.output_size)
        return self.roi_layers[0](feat, rois.to(feat.dtype))
