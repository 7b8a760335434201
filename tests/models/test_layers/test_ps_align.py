"""The official Light-Head R-CNN PSAlign (max of the samples) against a
port of its CUDA kernel, forward and backward, and the extractor's two
pooling modes.

The port below is written line for line from zengarden/light_head_rcnn
``lib/lib_kernel/lib_psalign_pooling/psalign_pooling_op_gpu.cu.cc``
(``ROIAlignGetInterpolating``, ``PSAlignPoolingForward``,
``ROIAlignDistributeDiff``, ``PSAlignPoolingBackwardAtomic``), in NCHW
instead of the kernel's NHWC. It keeps the kernel's floor/ceil neighbours;
the RoIs here are random floats, so no sample lands exactly on an integer
coordinate (the one case where the two differ, see ps_align.py).
"""
import math

import numpy as np
import pytest
import torch
from torchvision.ops import ps_roi_align as tv_ps_roi_align

from shufflenet_det.models.layers import PSAlignMax, ps_align_max


def _coeff(dh, dw):
    return (1.0 - abs(dh)) * (1.0 - abs(dw))


def _corners(h, w, height, width):
    """The kernel's four (row, col, weight) corners, the outside ones
    dropped (``overflow``)."""
    out = []
    for h1, w1 in ((math.floor(h), math.floor(w)), (math.ceil(h), math.floor(w)),
                   (math.floor(h), math.ceil(w)), (math.ceil(h), math.ceil(w))):
        if h1 < 0 or w1 < 0 or h1 >= height or w1 >= width:
            continue
        out.append((h1, w1, _coeff(h - h1, w - w1)))
    return out


def official_psalign(data, rois, spatial_scale, group_size=7, sample=2,
                     top_diff=None):
    """Forward (and, with ``top_diff``, backward) of the official kernel.

    data (B, C, H, W) float64 numpy, rois (n, 5). Returns the output
    (n, output_dim, k, k) and the gradient of data (or None)."""
    _, channels, height, width = data.shape
    k = group_size
    output_dim = channels // (k * k)
    n_rois = rois.shape[0]
    top = np.zeros((n_rois, output_dim, k, k))
    diff = np.zeros_like(data) if top_diff is not None else None
    rate = 1.0 / sample
    for n in range(n_rois):
        b = int(rois[n, 0])
        start_w, start_h = rois[n, 1] * spatial_scale, rois[n, 2] * spatial_scale
        end_w, end_h = rois[n, 3] * spatial_scale, rois[n, 4] * spatial_scale
        bin_h = max(end_h - start_h, 0.0) / k
        bin_w = max(end_w - start_w, 0.0) / k
        for ctop in range(output_dim):
            for ph in range(k):
                for pw in range(k):
                    c = (ctop * k + ph) * k + pw
                    best, arg = -1e20, -1
                    for hi in range(sample):
                        for wi in range(sample):
                            hc = start_h + bin_h * (ph + rate * (hi + 0.5))
                            wc = start_w + bin_w * (pw + rate * (wi + 0.5))
                            val = sum(data[b, c, r, q] * wt for r, q, wt in
                                      _corners(hc, wc, height, width))
                            if val > best:
                                best, arg = val, wi + hi * sample
                    top[n, ctop, ph, pw] = best
                    if diff is not None:
                        hi, wi = arg // sample, arg % sample
                        hc = start_h + bin_h * (ph + rate * (hi + 0.5))
                        wc = start_w + bin_w * (pw + rate * (wi + 0.5))
                        for r, q, wt in _corners(hc, wc, height, width):
                            diff[b, c, r, q] += top_diff[n, ctop, ph, pw] * wt
    return top, diff


def _rois(kind, b, h, w, n, gen, stride=32):
    """RoIs (n, 5) in input pixels of an (h, w) map at ``stride``."""
    img = torch.randint(0, b, (n, 1), generator=gen).double()
    size = torch.tensor([w * stride, h * stride], dtype=torch.double)
    if kind == 'inside':
        xy = torch.rand(n, 2, generator=gen, dtype=torch.double) * size * 0.6
        wh = 16 + torch.rand(n, 2, generator=gen, dtype=torch.double) * \
            (size - xy - 17)
    elif kind == 'across':  # centred near an edge or a corner
        xy = (torch.rand(n, 2, generator=gen, dtype=torch.double) - 0.6) * 200
        xy = xy + (torch.rand(n, 2, generator=gen) > 0.5).double() * size
        wh = 40 + torch.rand(n, 2, generator=gen, dtype=torch.double) * 150
    elif kind == 'outside':  # beyond the far edge or before the near one
        xy = size + 40 + torch.rand(n, 2, generator=gen, dtype=torch.double) * 60
        xy[::2] = -200 - torch.rand((n + 1) // 2, 2, generator=gen,
                                    dtype=torch.double) * 50
        wh = 10 + torch.rand(n, 2, generator=gen, dtype=torch.double) * 100
    elif kind == 'tiny':  # below one feature pixel, some of zero size
        xy = torch.rand(n, 2, generator=gen, dtype=torch.double) * size * 0.9
        wh = torch.rand(n, 2, generator=gen, dtype=torch.double) * stride * 0.5
        wh[::3] = 0
    elif kind == 'huge':  # larger than the map
        xy = -torch.rand(n, 2, generator=gen, dtype=torch.double) * 500
        wh = size * 1.2 + torch.rand(n, 2, generator=gen,
                                     dtype=torch.double) * 1000
    else:
        raise ValueError(kind)
    return torch.cat([img, xy, xy + wh], 1)


KINDS = ('inside', 'across', 'outside', 'tiny', 'huge')


@pytest.mark.parametrize('kind', KINDS)
def test_forward_and_backward_match_the_official_kernel(kind):
    gen = torch.Generator().manual_seed(KINDS.index(kind))
    b, h, w, n = 2, 6, 9, 6
    feat = torch.randn(b, 490, h, w, generator=gen, dtype=torch.double)
    rois = _rois(kind, b, h, w, n, gen)
    top_diff = torch.randn(n, 10, 7, 7, generator=gen, dtype=torch.double)
    ref, ref_grad = official_psalign(feat.numpy(), rois.numpy(), 1 / 32,
                                     top_diff=top_diff.numpy())

    # float32, as the detector runs it
    x = feat.float().requires_grad_()
    out = ps_align_max(x, rois.float(), 7, 1 / 32, 2)
    out.backward(top_diff.float())
    assert out.shape == (n, 10, 7, 7)
    scale = np.abs(ref).max() + 1e-12
    assert np.abs(out.detach().double().numpy() - ref).max() / scale < 1e-4
    gscale = np.abs(ref_grad).max() + 1e-12
    assert np.abs(x.grad.double().numpy() - ref_grad).max() / gscale < 1e-4
    if kind == 'outside':
        assert np.all(ref == 0) and torch.all(out == 0)
        assert torch.all(x.grad == 0)
    else:
        assert np.abs(ref).max() > 0.1  # the case reads the map


def test_differs_from_torchvision_averaging():
    """The two poolings are not interchangeable: on RoIs inside the map
    torchvision's PSRoIAlign is far from the official pooling."""
    gen = torch.Generator().manual_seed(0)
    feat = torch.randn(1, 490, 10, 12, generator=gen)
    rois = _rois('inside', 1, 10, 12, 20, gen).float()
    ours = ps_align_max(feat, rois, 7, 1 / 32, 2)
    avg = tv_ps_roi_align(feat, rois, 7, 1 / 32, 2)
    assert (ours - avg).norm() / avg.norm() > 0.5


def test_one_bin_reads_its_own_channel_group():
    """Channel c of bin (ph, pw) reads input channel (c * 7 + ph) * 7 + pw:
    a map that is constant v_ch on channel ch gives v at every sample."""
    feat = torch.arange(490.).reshape(1, 490, 1, 1).expand(1, 490, 8, 8)
    rois = torch.tensor([[0, 32.3, 33.1, 190.7, 200.2]])
    out = ps_align_max(feat.contiguous(), rois, 7, 1 / 32, 2)
    c, ph, pw = torch.meshgrid(torch.arange(10), torch.arange(7),
                               torch.arange(7), indexing='ij')
    torch.testing.assert_close(out[0], ((c * 7 + ph) * 7 + pw).float())


def test_module_and_errors():
    layer = PSAlignMax(7, 1 / 16, 2)
    assert 'output_size=7' in repr(layer)
    feat = torch.randn(1, 490, 5, 5)
    assert layer(feat, torch.zeros(0, 5)).shape == (0, 10, 7, 7)
    with pytest.raises(ValueError, match='sampling_ratio > 0'):
        ps_align_max(feat, torch.zeros(1, 5), 7, 1 / 16, 0)
    with pytest.raises(ValueError, match='not a multiple'):
        ps_align_max(torch.randn(1, 100, 5, 5), torch.zeros(1, 5), 7)
