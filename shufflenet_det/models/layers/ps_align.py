"""Light-Head R-CNN's position-sensitive RoI align, as its official code
pools ("PSAlign", max of the samples).

The official COCO model (zengarden/light_head_rcnn,
``experiments/lizeming/light_head_rcnn.ori_res101.coco.ps_roialign/
network_desp.py``) pools the thin map with ``psalign_pooling_op.psalign_pool(
..., sample_height=2, sample_width=2)``, whose kernel
(``lib/lib_kernel/lib_psalign_pooling/psalign_pooling_op_gpu.cu.cc``,
``PSAlignPoolingForward``) differs from torchvision's ``PSRoIAlign`` in three
ways, each of which trains fine and changes what the R-CNN sees:

1. bin (ph, pw) outputs the **maximum** of its ``s x s`` bilinear samples
   (torchvision: their mean); the gradient goes to the chosen sample only
   (``PSAlignPoolingBackwardAtomic`` with ``argmax_position``);
2. the RoI is scaled to the map with **no half-pixel offset**: sample (i, j)
   of bin (ph, pw) is at ``y1 * scale + bin_h * (ph + (i + 0.5) / s)``,
   ``bin_h = max(y2 - y1, 0) * scale / k`` (torchvision subtracts 0.5);
3. a bilinear corner **outside the map contributes 0** (torchvision clamps
   samples within one pixel of the border to the border).

Channel c of bin (ph, pw) reads input channel ``(c * k + ph) * k + pw`` in
both. One detail is not copied: the kernel takes ``floor`` and ``ceil`` as
the two neighbours of a coordinate, so one that is exactly an integer counts
its pixel twice (a discontinuity of the interpolation, hit only by
coordinates that land exactly on a pixel); here the two neighbours are
``floor`` and ``floor + 1``, as every bilinear sampler does.

:func:`ps_align_max` is written with ``torchvision.ops.roi_align``, which
runs on CPU and CUDA, has its own backward and exports to ONNX's
``RoiAlign``: the map, padded with one zero pixel (rule 3), is regrouped as
one image of ``C`` channels per (image, bin) (rule: each bin reads its own
channel group), and every sample becomes a RoI of zero size pooled to one
value with one sample (so ``roi_align`` reads exactly that point); the max is
taken over a bin's samples. The same function runs in training, in eager
inference and in the exported graph.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import roi_align


def bin_groups(feat, k):
    """(B, C * k * k, H, W) -> (B * k * k, C, H, W): one image per (image,
    bin) holding the C channels that bin reads (channel ``(c * k + ph) * k
    + pw`` of bin (ph, pw)), image ``b * k * k + ph * k + pw``."""
    b, ckk, h, w = feat.shape
    c = ckk // (k * k)
    return feat.reshape(b, c, k * k, h, w).transpose(1, 2).reshape(
        b * k * k, c, h, w)


def ps_align_max(feat, rois, output_size=7, spatial_scale=1 / 32,
                 sampling_ratio=2):
    """Official Light-Head R-CNN PSAlign: position-sensitive RoI align with
    the maximum of each bin's samples (module docstring).

    Args:
        feat (Tensor): (B, C * k * k, H, W).
        rois (Tensor): (n, 5): batch index, x1, y1, x2, y2 in input pixels.
        output_size (int): k, bins per side.
        spatial_scale (float): feature pixels per input pixel.
        sampling_ratio (int): s > 0, samples per bin side.

    Returns:
        Tensor: (n, C, k, k).
    """
    k, s = int(output_size), int(sampling_ratio)
    if s <= 0:
        raise ValueError('ps_align_max needs sampling_ratio > 0 (the '
                         f'official kernel samples 2 x 2), got {s}')
    b, ckk, h, w = feat.shape
    if ckk % (k * k):
        raise ValueError(f'ps_align_max: {ckk} channels is not a multiple '
                         f'of {k} x {k} bins')
    c = ckk // (k * k)
    # (B * k * k, C, H + 2, W + 2): one image per (image, bin), zero border.
    groups = bin_groups(F.pad(feat, (1, 1, 1, 1)), k)
    n = rois.shape[0]
    rois = rois.to(feat.dtype)
    x1, y1 = rois[:, 1] * spatial_scale, rois[:, 2] * spatial_scale
    bin_w = (rois[:, 3] * spatial_scale - x1).clamp(min=0) / k
    bin_h = (rois[:, 4] * spatial_scale - y1).clamp(min=0) / k
    bins = torch.arange(k, dtype=feat.dtype, device=feat.device)
    offs = (torch.arange(s, dtype=feat.dtype, device=feat.device) + 0.5) / s
    pos = bins[:, None] + offs  # (k, s): bin p, sample i -> p + (i + .5) / s
    # Sample coordinates in the padded map (+1): (n, k, s) per axis.
    xs = x1[:, None, None] + bin_w[:, None, None] * pos + 1
    ys = y1[:, None, None] + bin_h[:, None, None] * pos + 1
    shape = (n, k, k, s, s)  # RoI, ph, pw, i, j
    x = xs[:, None, :, None, :].expand(shape)
    y = ys[:, :, None, :, None].expand(shape)
    # Group image of (image, ph, pw): image * k * k + ph * k + pw.
    cell = (bins[:, None] * k + bins)[None, :, :, None, None]
    img = (rois[:, 0, None, None, None, None] * (k * k) + cell).expand(shape)
    # A zero-size box at (x + 0.5, y + 0.5): aligned roi_align subtracts the
    # half pixel and samples exactly (x, y) once.
    points = torch.stack((img, x + 0.5, y + 0.5, x + 0.5, y + 0.5), -1)
    samples = roi_align(groups, points.reshape(-1, 5), 1, 1.0, 1,
                        aligned=True)  # (n * k * k * s * s, C, 1, 1)
    samples = samples.reshape(n, k, k, s * s, c)
    # max(dim) (not amax): the gradient goes to one sample, as the kernel's
    # argmax_position.
    return samples.max(dim=3).values.permute(0, 3, 1, 2)


class PSAlignMax(nn.Module):
    """:func:`ps_align_max` as a module with torchvision ``PSRoIAlign``'s
    signature (``output_size``, ``spatial_scale``, ``sampling_ratio``), so
    that mmdet's RoI extractors can build either."""

    def __init__(self, output_size, spatial_scale, sampling_ratio):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio

    def forward(self, feat, rois):
        return ps_align_max(feat, rois, self.output_size, self.spatial_scale,
                            self.sampling_ratio)

    def __repr__(self):
        return (f'{type(self).__name__}(output_size={self.output_size}, '
                f'spatial_scale={self.spatial_scale}, '
                f'sampling_ratio={self.sampling_ratio})')
