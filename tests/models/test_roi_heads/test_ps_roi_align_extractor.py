"""PSRoIAlignExtractor: the official Light-Head PSAlign (max, the default)
or torchvision's PSRoIAlign (avg) as an mmdet RoI extractor."""
import pytest
import torch
from torchvision.ops import ps_roi_align

from shufflenet_det.models.layers import ps_align_max
from shufflenet_det.models.roi_heads import PSRoIAlignExtractor


def _rois():
    # (batch index, x1, y1, x2, y2) in input pixels.
    return torch.tensor([[0, 0., 0., 64., 64.], [1, 17., 9., 203., 121.],
                         [0, 100., 30., 140., 190.]])


def test_max_is_the_official_psalign_and_the_default():
    torch.manual_seed(0)
    extractor = PSRoIAlignExtractor(featmap_strides=[32])
    assert extractor.pool_mode == 'max'
    feat = torch.randn(2, 490, 8, 9)
    out = extractor((feat, ), _rois())
    assert out.shape == (3, 10, 7, 7)
    torch.testing.assert_close(out, ps_align_max(feat, _rois(), 7, 1 / 32, 2))


def test_avg_equals_torchvision_ps_roi_align():
    torch.manual_seed(0)
    extractor = PSRoIAlignExtractor(featmap_strides=[32], pool_mode='avg')
    feat = torch.randn(2, 490, 8, 9)
    out = extractor((feat, ), _rois())
    expected = ps_roi_align(feat, _rois(), output_size=7,
                            spatial_scale=1 / 32, sampling_ratio=2)
    torch.testing.assert_close(out, expected)


def test_unknown_pool_mode_names_the_valid_ones():
    with pytest.raises(ValueError, match="'max'.*'avg'"):
        PSRoIAlignExtractor(pool_mode='mean')


@pytest.mark.parametrize('mode', ['max', 'avg'])
def test_bins_read_their_channels(mode):
    # Output channel c of bin (i, j) reads input channel c * 49 + i * 7 + j;
    # here that channel holds the constant i * 7 + j.
    extractor = PSRoIAlignExtractor(out_channels=2, featmap_strides=[16],
                                    pool_mode=mode)
    groups = torch.arange(49.).repeat(2)  # 98 channels
    feat = groups.view(1, 98, 1, 1).expand(1, 98, 10, 10).contiguous()
    out = extractor((feat, ), torch.tensor([[0, 8., 8., 120., 120.]]))
    expected = torch.arange(49.).view(7, 7).expand(1, 2, 7, 7)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize('mode', ['max', 'avg'])
def test_alignment(mode):
    # A horizontal ramp f(x, y) = x. avg: a bin's value is its centre's x in
    # feature coordinates, RoI coordinates shifted by half a pixel. max (the
    # official kernel): its right samples' x, at 3/4 of the bin, no shift.
    stride = 8
    extractor = PSRoIAlignExtractor(out_channels=1, featmap_strides=[stride],
                                    pool_mode=mode)
    feat = torch.arange(40.).view(1, 1, 1, 40).expand(1, 49, 30, 40)
    x1, x2 = 40., 152.
    out = extractor((feat.contiguous(), ),
                    torch.tensor([[0, x1, 16., x2, 128.]]))
    bin_w = (x2 - x1) / stride / 7
    if mode == 'avg':
        expected = x1 / stride - 0.5 + (torch.arange(7.) + 0.5) * bin_w
    else:
        expected = x1 / stride + (torch.arange(7.) + 0.75) * bin_w
    torch.testing.assert_close(out[0, 0], expected.expand(7, 7))


@pytest.mark.parametrize('mode', ['max', 'avg'])
def test_gradient_and_empty_rois(mode):
    extractor = PSRoIAlignExtractor(pool_mode=mode)
    feat = torch.randn(1, 490, 4, 4, requires_grad=True)
    extractor((feat, ), _rois()[:1]).sum().backward()
    assert feat.grad.abs().sum() > 0
    empty = extractor((feat, ), torch.zeros(0, 5))
    assert empty.shape == (0, 10, 7, 7)


def test_wrong_channels_rejected():
    extractor = PSRoIAlignExtractor()
    with pytest.raises(ValueError, match='490'):
        extractor((torch.randn(1, 64, 4, 4), ), _rois()[:1])
