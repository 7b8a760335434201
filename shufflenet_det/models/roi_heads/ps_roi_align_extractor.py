from torchvision.ops import PSRoIAlign

from mmdet.models.roi_heads.roi_extractors import BaseRoIExtractor
from mmdet.registry import MODELS
from ..layers.ps_align import PSAlignMax


@MODELS.register_module()
class PSRoIAlignExtractor(BaseRoIExtractor):
    """Position-sensitive RoI align on one feature map (R-FCN's PSRoI
    pooling with RoIAlign's bilinear sampling; Light-Head R-CNN Sec. 3,
    "PSRoIAlign").

    The input has ``out_channels x output_size ** 2`` channels (490 = 10 x 7
    x 7); output channel c of bin (i, j) of every RoI pools ``sampling_ratio
    ** 2`` bilinear samples of input channel ``(c * output_size + i) *
    output_size + j``, which gives (num_rois, out_channels, output_size,
    output_size). Two poolings (mmcv has no PSRoIAlign, so mmdet's
    ``roi_layer=dict(type=...)`` cannot name one):

    - ``pool_mode='max'``: the official Light-Head R-CNN "PSAlign"
      (:class:`~shufflenet_det.models.layers.PSAlignMax`): the maximum of
      the samples, RoI coordinates scaled with no half-pixel offset, zero
      outside the map. What the paper's models were trained with.
    - ``pool_mode='avg'``: torchvision's ``ops.PSRoIAlign``: the mean of the
      samples, coordinates shifted by half a pixel (RoIAlign's
      ``aligned=True``), samples near the border clamped to it.

    Args:
        output_size (int): bins per side. Default: 7.
        sampling_ratio (int): samples per bin side. Default: 2.
        out_channels (int): channels per bin; 10 in Light-Head R-CNN.
            Default: 10.
        featmap_strides (Sequence[int]): one stride, the thin map's (32 when
            it is made from C5 without atrous convolution, as in the small
            setting). Default: (32, ).
        pool_mode (str): 'max' (official) or 'avg' (torchvision).
            Default: 'max'.
        init_cfg (dict, optional): as BaseModule. Default: None.
    """

    POOL_LAYERS = {'max': PSAlignMax, 'avg': PSRoIAlign}

    def __init__(self, output_size=7, sampling_ratio=2, out_channels=10,
                 featmap_strides=(32, ), pool_mode='max', init_cfg=None):
        if len(featmap_strides) != 1:
            raise ValueError('PSRoIAlignExtractor reads one feature map; got '
                             f'featmap_strides={featmap_strides}')
        if pool_mode not in self.POOL_LAYERS:
            raise ValueError(
                f'PSRoIAlignExtractor: pool_mode={pool_mode!r}; valid: '
                "'max' (Light-Head R-CNN's official PSAlign) or 'avg' "
                "(torchvision's PSRoIAlign)")
        super().__init__(
            roi_layer=dict(type=self.POOL_LAYERS[pool_mode],
                           output_size=output_size,
                           sampling_ratio=sampling_ratio),
            out_channels=out_channels, featmap_strides=list(featmap_strides),
            init_cfg=init_cfg)
        self.output_size = output_size
        self.pool_mode = pool_mode
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
