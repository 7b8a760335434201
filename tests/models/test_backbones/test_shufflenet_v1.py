"""ShuffleNetV1: channel tables, shapes and strides, the units, freezing,
gradient checkpointing, and loading official megvii checkpoints exactly."""
import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

import shufflenet_det  # noqa: F401
from mmdet.registry import MODELS
from shufflenet_det.models.backbones.converters import (
    megvii_to_shufflenet_v1, v1_unit_permutation)
from shufflenet_det.models.backbones.shufflenet_v1 import ShuffleNetV1
from megvii_reference import official_forward as _official_forward
from megvii_reference import official_state as _official_state

# ShuffleNet V2 paper Table 8 / official models, g = 3: (conv1, stages).
G3 = {
    0.5: (12, (120, 240, 480)),
    1.0: (24, (240, 480, 960)),
    1.5: (24, (360, 720, 1440)),
    2.0: (48, (480, 960, 1920)),
}
# V1 paper Table 1, 1x.
TABLE1 = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}


@pytest.mark.parametrize('widen_factor', sorted(G3))
def test_g3_shapes_and_strides(widen_factor):
    stem, channels = G3[widen_factor]
    model = ShuffleNetV1(groups=3, widen_factor=widen_factor,
                         out_indices=(0, 1, 2)).eval()
    assert model.conv1.conv.out_channels == stem
    assert model.out_channels == channels
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 64))
    for out, c, stride in zip(outs, channels, (8, 16, 32)):
        assert out.shape == (1, c, 64 // stride, 64 // stride)


@pytest.mark.parametrize('groups', sorted(TABLE1))
@pytest.mark.parametrize('widen_factor', [0.5, 1.0, 1.5, 2.0])
def test_every_group_and_width_builds(groups, widen_factor):
    model = ShuffleNetV1(groups=groups, widen_factor=widen_factor)
    c2 = model.out_channels[0]
    if widen_factor == 1.0:
        assert model.out_channels == (TABLE1[groups], 2 * TABLE1[groups],
                                      4 * TABLE1[groups])
    assert c2 % (4 * groups) == 0
    assert abs(c2 / (TABLE1[groups] * widen_factor) - 1) < 0.1


def test_every_group_runs():
    for groups in sorted(TABLE1):
        model = ShuffleNetV1(groups=groups, widen_factor=0.5,
                             out_indices=(0, 1, 2)).eval()
        with torch.no_grad():
            outs = model(torch.rand(1, 3, 32, 32))
        assert [o.shape[1] for o in outs] == list(model.out_channels)
        assert outs[-1].shape[-2:] == (1, 1)


def test_official_g8_conv1():
    # The official g = 8 models: conv1 16 at 0.5x (192 - 16 splits into 8).
    assert ShuffleNetV1(groups=8, widen_factor=0.5).conv1.conv.out_channels \
        == 16
    assert ShuffleNetV1(groups=8, widen_factor=1.0).out_channels == (384, 768,
                                                                     1536)


def test_units():
    model = ShuffleNetV1(groups=3).eval()
    units = [u for layer in model.layers for u in layer]
    assert len(units) == 16  # 4/8/4
    # Only the very first pointwise conv of stage2 is not grouped (V1 3.3).
    assert units[0].g_conv_1x1_compress.conv.groups == 1
    assert all(u.g_conv_1x1_compress.conv.groups == 3 for u in units[1:])
    assert all(u.g_conv_1x1_expand.conv.groups == 3 for u in units)
    # Bottleneck = out / 4, also in the stride-2 units.
    assert units[0].g_conv_1x1_compress.conv.out_channels == 240 // 4
    assert units[4].g_conv_1x1_compress.conv.out_channels == 480 // 4
    # A stride-2 unit concatenates the 3x3/2 average-pooled input.
    x = torch.rand(1, 240, 8, 8)
    with torch.no_grad():
        out = units[4](x)
    assert out.shape == (1, 480, 4, 4)
    assert torch.allclose(out[:, :240], F.avg_pool2d(x, 3, 2, 1))


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r'\[1, 2, 3, 4, 8\]'):
        ShuffleNetV1(groups=5)
    with pytest.raises(ValueError, match=r'0\.5, 1\.0, 1\.5, 2\.0'):
        ShuffleNetV1(widen_factor=0.75)
    with pytest.raises(ValueError, match='no conv5'):
        ShuffleNetV1(out_indices=(3, ))


@pytest.mark.parametrize('frozen_stages', [-1, 0, 2, 3])
def test_frozen_stages_and_norm_eval(frozen_stages):
    model = ShuffleNetV1(widen_factor=0.5, frozen_stages=frozen_stages)
    model.train()
    frozen = ([model.conv1] if frozen_stages >= 0 else []) + list(
        model.layers[:max(frozen_stages, 0)])
    for m in [model.conv1, *model.layers]:
        is_frozen = any(m is f for f in frozen)
        assert all(p.requires_grad != is_frozen for p in m.parameters())
        assert all(b.training != is_frozen for b in m.modules()
                   if isinstance(b, _BatchNorm))

    model = ShuffleNetV1(widen_factor=0.5, norm_eval=True)
    model.train()
    assert all(not m.training for m in model.modules()
               if isinstance(m, _BatchNorm))
    assert all(p.requires_grad for p in model.parameters())


def test_with_cp_same_output_and_gradients():
    torch.manual_seed(0)
    plain = ShuffleNetV1(widen_factor=0.5, out_indices=(0, 1, 2))
    plain.init_weights()
    ckpt = ShuffleNetV1(widen_factor=0.5, out_indices=(0, 1, 2),
                        with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    plain.eval()
    ckpt.eval()
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    outs = [model(x) for model in (plain, ckpt)]
    grads = []
    for model, out in zip((plain, ckpt), outs):
        loss = sum((o * o).mean() for o in out)
        grads.append(torch.autograd.grad(loss, [x, *model.parameters()]))
    for a, b in zip(*outs):
        assert torch.allclose(a, b)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6)


# ------------------------------------------------ official megvii checkpoints
@pytest.mark.parametrize('groups,widen_factor', [(3, 0.5), (3, 1.0),
                                                 (8, 2.0)])
def test_megvii_checkpoint_loads_exactly(tmp_path, groups, widen_factor):
    model = MODELS.build(
        dict(type='ShuffleNetV1', groups=groups, widen_factor=widen_factor,
             out_indices=(0, 1, 2)))
    state = _official_state(model)
    path = str(tmp_path / 'snetv1.pth.tar')
    # As released: DataParallel keys inside a 'state_dict' wrapper.
    torch.save({'state_dict': {f'module.{k}': v
                               for k, v in state.items()}}, path)
    model.init_cfg = dict(type='Pretrained', checkpoint=path)
    model.init_weights()
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours = model(x)
        ref = _official_forward(state, x, groups)
    for a, b in zip(ours, ref):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * b.abs().max())


def test_megvii_shuffle_needs_the_reordering():
    """Renaming alone would not do: the official shuffle is the inverse of
    ours, so without the reordering the features differ."""
    model = ShuffleNetV1(groups=3, widen_factor=0.5, out_indices=(2, ))
    state = _official_state(model)
    renamed = megvii_to_shufflenet_v1(state, groups=1)  # g = 1: no reorder
    model.load_state_dict(renamed)
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        wrong = model(x)[0]
    ref = _official_forward(state, x, 3)[-1]
    assert not torch.allclose(wrong, ref, atol=1e-2 * ref.abs().max())


def test_unit_permutation_keeps_groups():
    src, pos, official_pos = v1_unit_permutation(60, 3)
    assert sorted(src) == list(range(60))
    n = 20
    for t, u in enumerate(src):
        assert t // n == u // n  # same compress group
        assert pos[t] // n == official_pos[u] // n  # same expand group


def test_megvii_g8_widths_that_cannot_match_are_refused(tmp_path):
    model = ShuffleNetV1(groups=8, widen_factor=1.0)
    path = str(tmp_path / 'g8.pth')
    torch.save(_official_state(model), path)
    model.init_cfg = dict(type='Pretrained', checkpoint=path)
    with pytest.raises(ValueError, match='official channel shuffle'):
        model.init_weights()


def test_mmpretrain_classifier_checkpoint_loads(tmp_path):
    torch.manual_seed(0)
    src = ShuffleNetV1(widen_factor=0.5, out_indices=(0, 1, 2))
    src.init_weights()
    state = {f'backbone.{k}': v for k, v in src.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(1000, 480)
    path = str(tmp_path / 'mmpretrain.pth')
    torch.save({'meta': {}, 'state_dict': state}, path)
    model = ShuffleNetV1(widen_factor=0.5, out_indices=(0, 1, 2),
                         init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
