"""ShuffleNetV2 / ShuffleNetV2Star: shapes and strides, the channel shuffle,
freezing, gradient checkpointing, the V2* extra depthwise conv, torchvision
equivalence and use inside an mmdet Faster R-CNN FPN."""
import copy
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

import shufflenet_det  # noqa: F401
from mmdet.registry import MODELS
from shufflenet_det.models.backbones.shufflenet_v2 import (ShuffleNetV2,
                                                           ShuffleNetV2Star,
                                                           ShuffleUnitV2,
                                                           channel_shuffle,
                                                           concat_shuffle)

# Paper Table 5: widen_factor -> stage2/3/4, conv5 channels.
TABLE5 = {
    0.5: (48, 96, 192, 1024),
    1.0: (116, 232, 464, 1024),
    1.5: (176, 352, 704, 1024),
    2.0: (244, 488, 976, 2048),
}
STRIDES = (8, 16, 32, 32)


def _reference_shuffle(x, groups):
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(
        b, c, h, w)


def _randomize_bn(model):
    """BN statistics and affine parameters far from 0/1, so that a wrong
    channel order shows in eval mode."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.1)


def _depthwise_3x3(model):
    return [
        m for m in model.modules() if isinstance(m, nn.Conv2d)
        and m.kernel_size == (3, 3) and m.groups == m.in_channels > 1
    ]


@pytest.mark.parametrize('cls', [ShuffleNetV2, ShuffleNetV2Star])
@pytest.mark.parametrize('widen_factor', sorted(TABLE5))
def test_output_shapes_and_strides(cls, widen_factor):
    model = cls(widen_factor=widen_factor, out_indices=(0, 1, 2, 3)).eval()
    assert model.out_channels == TABLE5[widen_factor]
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 64))
    assert len(outs) == 4
    for out, channels, stride in zip(outs, TABLE5[widen_factor], STRIDES):
        assert out.shape == (1, channels, 64 // stride, 64 // stride)


def test_out_indices_select_and_order():
    model = ShuffleNetV2(widen_factor=0.5, out_indices=(1, 3)).eval()
    with torch.no_grad():
        c4, c5 = model(torch.rand(1, 3, 64, 64))
    assert c4.shape == (1, 96, 4, 4)  # C4: stage3, stride 16
    assert c5.shape == (1, 1024, 2, 2)  # C5: conv5, stride 32


def test_registered_in_mmdet():
    model = MODELS.build(dict(type='ShuffleNetV2Star', widen_factor=0.5))
    assert type(model) is ShuffleNetV2Star


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r'0\.5, 1\.0, 1\.5, 2\.0'):
        ShuffleNetV2(widen_factor=0.75)
    with pytest.raises(ValueError, match='conv5'):
        ShuffleNetV2(out_indices=(4, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        ShuffleNetV2(frozen_stages=4)


def test_channel_shuffle_equals_reference():
    x = torch.randn(2, 24, 3, 5)
    for groups in (1, 2, 3, 4, 6, 8):
        out = channel_shuffle(x, groups)
        assert torch.equal(out, _reference_shuffle(x, groups))
        # ShuffleNet V1 Sec. 3.1: channel j*n + i goes to i*g + j.
        n = 24 // groups
        for j in range(groups):
            for i in range(n):
                assert torch.equal(out[:, i * groups + j], x[:, j * n + i])


def test_concat_shuffle_equals_cat_then_shuffle():
    x1 = torch.randn(2, 58, 7, 9, requires_grad=True)
    x2 = torch.randn(2, 58, 7, 9, requires_grad=True)
    out = concat_shuffle(x1, x2)
    ref = _reference_shuffle(torch.cat((x1, x2), 1), 2)
    assert torch.equal(out, ref)
    assert out.is_contiguous()
    # Gradients too (the backward of stack / flatten).
    w = torch.randn_like(out)
    g1 = torch.autograd.grad((out * w).sum(), (x1, x2))
    g2 = torch.autograd.grad((ref * w).sum(), (x1, x2))
    for a, b in zip(g1, g2):
        assert torch.equal(a, b)


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2, 3])
def test_frozen_stages(frozen_stages):
    model = ShuffleNetV2(widen_factor=0.5, frozen_stages=frozen_stages)
    model.train()
    frozen = ([model.conv1] if frozen_stages >= 0 else []) + list(
        model.layers[:max(frozen_stages, 0)])
    trainable = [
        m for m in [model.conv1, *model.layers]
        if all(m is not f for f in frozen)
    ]
    for m in frozen:
        assert all(not p.requires_grad for p in m.parameters())
        assert all(not b.training for b in m.modules()
                   if isinstance(b, _BatchNorm))
    for m in trainable:
        assert all(p.requires_grad for p in m.parameters())
        assert all(b.training for b in m.modules()
                   if isinstance(b, _BatchNorm))


def test_norm_eval():
    model = ShuffleNetV2(widen_factor=0.5, norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    assert all(p.requires_grad for p in model.parameters())
    # The convolutions themselves stay in training mode.
    assert model.training and model.layers[0].training


@pytest.mark.parametrize('cls', [ShuffleNetV2, ShuffleNetV2Star])
def test_with_cp_same_output_and_gradients(cls):
    torch.manual_seed(0)
    plain = cls(widen_factor=0.5, out_indices=(0, 1, 2, 3))
    plain.init_weights()
    ckpt = cls(widen_factor=0.5, out_indices=(0, 1, 2, 3), with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    # Eval-mode BN: the recomputation in backward must not see other
    # statistics.
    plain.eval()
    ckpt.eval()
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    outs = [model(x) for model in (plain, ckpt)]
    for a, b in zip(*outs):
        assert torch.allclose(a, b)
    grads = []
    for model, out in zip((plain, ckpt), outs):
        loss = sum((o * o).mean() for o in out)
        grads.append(torch.autograd.grad(loss, [x, *model.parameters()]))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6)


def test_v2star_has_one_more_depthwise_conv_per_unit():
    v2, star = ShuffleNetV2(), ShuffleNetV2Star()
    units = [m for m in v2.modules() if isinstance(m, ShuffleUnitV2)]
    star_units = [m for m in star.modules() if isinstance(m, ShuffleUnitV2)]
    assert len(units) == len(star_units) == 16
    for u, s in zip(units, star_units):
        assert len(_depthwise_3x3(s)) == len(_depthwise_3x3(u)) + 1
        assert u.extra_dw is None
        conv = s.extra_dw.conv
        assert conv.stride == (1, 1) and conv.kernel_size == (3, 3)
        assert not s.extra_dw.with_activation  # BN, no ReLU
    assert len(_depthwise_3x3(star)) == len(_depthwise_3x3(v2)) + 16
    # The extra conv comes before the first pointwise conv: it reads the
    # branch input (half the channels at stride 1, all at stride 2).
    for s in star_units:
        first_pw = s.branch2[0].conv
        assert s.extra_dw.conv.out_channels == first_pw.in_channels


def _input_support(unit, channels, size=15):
    """Rows/cols of the input that one output pixel of ``channels`` reads."""
    x = torch.randn(1, unit_in(unit), size, size, requires_grad=True)
    out = unit(x)
    c = out.shape[-1] // 2
    out[0, channels, c, c].abs().sum().backward()
    nz = x.grad[0].abs().sum(0).nonzero()
    return (nz[:, 0].max() - nz[:, 0].min() + 1).item(), (
        nz[:, 1].max() - nz[:, 1].min() + 1).item()


def unit_in(unit):
    return (unit.branch1[0].conv.in_channels
            if unit.stride == 2 else 2 * unit.branch2[0].conv.in_channels)


@pytest.mark.parametrize('branch', ['shortcut', 'main'])
def test_v2star_stride2_unit_extra_dw_serves_both_branches(branch):
    """The V2* choice at stride 2: the extra conv is on the unit input, so
    the receptive field of both branches grows from 3 to 5 (an output pixel
    at stride 2 reads 3x3 input pixels in V2)."""
    torch.manual_seed(0)
    # Shuffled output: even channels come from branch1 (the shortcut), odd
    # ones from branch2 (the main branch).
    channels = slice(0, None, 2) if branch == 'shortcut' else slice(1, None, 2)
    sizes = {}
    for extra in (False, True):
        unit = ShuffleUnitV2(8, 16, stride=2, extra_dw=extra, act_cfg=None)
        unit.eval()
        sizes[extra] = _input_support(unit, channels)
    assert sizes[False] == (3, 3)
    assert sizes[True] == (5, 5)


def test_v2star_stride1_unit_keeps_the_identity_half():
    torch.manual_seed(0)
    unit = ShuffleUnitV2(16, 16, stride=1, extra_dw=True).eval()
    x = torch.randn(1, 16, 9, 9)
    with torch.no_grad():
        out = unit(x)
    assert torch.equal(out[:, 0::2], x[:, :8])
    assert _input_support(unit, slice(1, None, 2)) == (5, 5)


def test_v2star_extra_dw_starts_as_identity():
    torch.manual_seed(0)
    v2 = ShuffleNetV2(widen_factor=0.5, out_indices=(0, 1, 2, 3))
    v2.init_weights()
    _randomize_bn(v2)
    star = ShuffleNetV2Star(widen_factor=0.5, out_indices=(0, 1, 2, 3))
    star.init_weights()
    missing, unexpected = star.load_state_dict(v2.state_dict(), strict=False)
    assert not unexpected and all('.extra_dw.' in k for k in missing)
    v2.eval()
    star.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(v2(x), star(x)):
            # BN eps: x / sqrt(1 + 1e-5) per extra conv.
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)


def _torchvision_features(model, x):
    x = model.maxpool(model.conv1(x))
    outs = []
    for name in ('stage2', 'stage3', 'stage4', 'conv5'):
        x = getattr(model, name)(x)
        outs.append(x)
    return outs


def test_torchvision_checkpoint_loads_with_equal_features(tmp_path):
    torchvision = pytest.importorskip('torchvision')
    torch.manual_seed(0)
    tv = torchvision.models.shufflenet_v2_x1_0()
    _randomize_bn(tv)
    path = str(tmp_path / 'shufflenetv2_x1.pth')
    torch.save(tv.state_dict(), path)  # a bare torchvision state dict

    model = MODELS.build(
        dict(type='ShuffleNetV2', widen_factor=1.0, out_indices=(0, 1, 2, 3),
             init_cfg=dict(type='Pretrained', checkpoint=path)))
    model.init_weights()
    model.eval()
    tv.eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        ours = model(x)
        ref = _torchvision_features(tv, x)
    for name, a, b in zip(('stage2', 'stage3', 'stage4', 'conv5'), ours, ref):
        assert a.shape == b.shape, name
        assert torch.allclose(a, b, atol=1e-5), name


def test_mmdet_faster_rcnn_fpn_loss_and_predict():
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmdet
    from mmdet.testing import demo_mm_inputs
    init_default_scope('mmdet')
    cfg_path = osp.join(
        osp.dirname(mmdet.__file__), '.mim', 'configs', '_base_', 'models',
        'faster-rcnn_r50_fpn.py')
    if not osp.exists(cfg_path):
        pytest.skip('mmdet configs not installed')
    cfg = copy.deepcopy(Config.fromfile(cfg_path).model)
    cfg.backbone = dict(type='ShuffleNetV2', widen_factor=0.5,
                        out_indices=(0, 1, 2, 3), norm_eval=True,
                        frozen_stages=1)
    cfg.neck.in_channels = list(TABLE5[0.5])
    cfg.neck.num_outs = 4
    cfg.neck.out_channels = 32
    cfg.rpn_head.in_channels = 32
    cfg.rpn_head.feat_channels = 32
    cfg.rpn_head.anchor_generator.strides = [8, 16, 32, 64]
    roi = cfg.roi_head
    roi.bbox_roi_extractor.out_channels = 32
    roi.bbox_roi_extractor.featmap_strides = [8, 16, 32]
    roi.bbox_head.update(in_channels=32, fc_out_channels=64, num_classes=3)
    cfg.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=50)
    cfg.train_cfg.rcnn.sampler.num = 64
    cfg.test_cfg.rpn.update(nms_pre=200, max_per_img=50)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()

    packed = demo_mm_inputs(batch_size=1, image_shapes=[(3, 128, 128)],
                            num_items=[2], num_classes=3)
    data = model.data_preprocessor(packed, True)
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v if isinstance(v, torch.Tensor) else sum(v)
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.layers[2][0].branch2[0].conv.weight.grad is not None
    assert model.backbone.conv1.conv.weight.grad is None  # frozen

    model.eval()
    data = model.data_preprocessor(packed, False)
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    assert len(results) == 1
    assert results[0].pred_instances.bboxes.shape[1] == 4


def test_default_init_reaches_every_unit():
    torch.manual_seed(0)
    model = ShuffleNetV2(widen_factor=2.0)
    model.init_weights()
    conv = model.layers[2][3].branch2[0].conv  # 488 -> 488 1x1
    expected = (2 / conv.out_channels)**0.5  # Kaiming normal, fan-out
    assert abs(conv.weight.std().item() / expected - 1) < 0.05
