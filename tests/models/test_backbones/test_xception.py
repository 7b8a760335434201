"""LightXception: shapes and strides, the block (receptive field 7, ReLU
placement), FLOPs per level, freezing, loading."""
import pytest
import torch
from mmengine.runner import save_checkpoint
from torch.nn.modules.batchnorm import _BatchNorm

import shufflenet_det  # noqa: F401
from mmdet.registry import MODELS
from shufflenet_det import table7
from shufflenet_det.models.backbones.xception import (LightXception,
                                                      XceptionBlock)
from shufflenet_det.benchmark.complexity import classification_complexity

# widen_factor -> channels of out_indices 0, 1, 2 (docstring table):
# Light-Head R-CNN's 144/288/576 times the width
CHANNELS = {
    0.5: (72, 144, 288),
    1.0: (144, 288, 576),
    1.5: (216, 432, 864),
    2.0: (288, 576, 1152),
}
# widen_factor -> Table 7 level, MFLOPs in the docstring table
LEVELS = {0.5: ('40M', 41.5), 1.0: ('140M', 143.7), 1.5: ('300M', 306.6),
          2.0: ('500M', 530.3)}


@pytest.mark.parametrize('width', list(CHANNELS))
def test_every_output_index(width):
    model = MODELS.build(dict(type='LightXception', widen_factor=width,
                              out_indices=(0, 1, 2))).eval()
    assert model.out_channels == CHANNELS[width]
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    assert [o.shape for o in outs] == [
        (1, c, 64 // s, 96 // s) for c, s in zip(CHANNELS[width], (8, 16, 32))
    ]
    # the outputs are activated (the stages' sums are not)
    assert all(o.min() >= 0 for o in outs)
    # bottleneck widths: a sixth of the block's, multiples of 4
    for stage, c in zip(model.layers, CHANNELS[width]):
        for block in stage:
            mid = block.convs[0].pointwise.conv.out_channels
            assert mid * 6 == c and mid % 4 == 0


@pytest.mark.parametrize('width', list(CHANNELS))
def test_flops_per_level(width):
    """Classification multiply-adds (224x224, 1000-way fc) within 5% of the
    paper's Table 8, and as the docstring table says."""
    level, documented = LEVELS[width]
    model = MODELS.build(table7.backbone_cfg('xception', level,
                                             detection=False))
    assert model.widen_factor == width
    mflops, _ = classification_complexity(model)
    paper = table7.PAPER_MFLOPS['xception'][table7.LEVELS.index(level)]
    assert abs(mflops / paper - 1) < 0.05, (mflops, paper)
    assert mflops == pytest.approx(documented, abs=0.05)


def test_table7_channels_match_the_backbone():
    for width, (level, _) in LEVELS.items():
        cell = table7.cell('xception', level)
        assert (cell['c4_channels'], cell['c5_channels']) == \
            CHANNELS[width][1:]


def _support(block, size, out_pixel):
    """Input pixels that one output pixel's gradient reaches."""
    torch.manual_seed(0)
    x = torch.randn(1, block.convs[0].depthwise.conv.in_channels, size, size,
                    requires_grad=True)
    block.eval()(x)[0, :, out_pixel, out_pixel].sum().backward()
    return x.grad.abs().sum(dim=(0, 1)).gt(0)


def test_block():
    block = XceptionBlock(24, 144, 24, stride=2).eval()
    # three separable convs in -> mid -> mid -> out, stride on the last
    seps = list(block.convs)
    assert [(s.depthwise.conv.in_channels, s.depthwise.conv.stride,
             s.pointwise.conv.out_channels) for s in seps] == [
                 (24, (1, 1), 24), (24, (1, 1), 24), (24, (2, 2), 144)]
    assert all(s.depthwise.conv.groups == s.depthwise.conv.in_channels
               for s in seps)
    assert block.shortcut is not None
    assert block.shortcut.conv.stride == (2, 2)
    assert block(torch.zeros(1, 24, 16, 16)).shape == (1, 144, 8, 8)
    identity = XceptionBlock(48, 48, 8)
    assert identity.shortcut is None


@pytest.mark.parametrize('stride', [1, 2])
def test_block_receptive_field_is_7(stride):
    """Three 3x3 depthwise convs in a row: one output pixel depends on the
    input up to 3 pixels away (at the input's resolution), not 4."""
    block = XceptionBlock(16, 16 if stride == 1 else 32, 8, stride=stride)
    seen = _support(block, 15, 7 // stride)
    c = 7 // stride * stride  # the output pixel's centre in the input
    window = torch.zeros(15, 15, dtype=torch.bool)
    window[c - 3:c + 4, c - 3:c + 4] = True
    assert seen[c - 3, c - 3] and seen[c + 3, c + 3] and seen[c, c]
    assert not seen[~window].any()


def test_block_relu_placement():
    """Xception's order: ReLU before each separable conv, none after the
    sum; the shortcut reads the input as it is. An all-negative input (all
    zeros after the first ReLU, and BN of zeros is zero at initialisation)
    passes an identity block unchanged."""
    block = XceptionBlock(16, 16, 8).eval()
    x = -torch.rand(1, 16, 8, 8) - 0.1
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)
    relus = [type(s.act).__name__ for s in block.convs]
    assert relus == ['ReLU'] * 3
    # never in place, even when asked: the shortcut reads the input
    block = XceptionBlock(16, 16, 8, act_cfg=dict(type='ReLU', inplace=True))
    assert not any(s.act.inplace for s in block.convs)


def test_bad_arguments():
    with pytest.raises(ValueError, match='widen_factor'):
        LightXception(widen_factor=0.75)
    with pytest.raises(ValueError, match='out_indices'):
        LightXception(out_indices=(3, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        LightXception(frozen_stages=4)
    with pytest.raises(ValueError, match='stride'):
        XceptionBlock(16, 16, 8, stride=3)


def test_frozen_stages_and_norm_eval():
    model = LightXception(0.5, frozen_stages=1, norm_eval=True).train()
    for frozen in (model.conv1, model.layers[0]):
        assert not any(p.requires_grad for p in frozen.parameters())
        assert not any(m.training for m in frozen.modules())
    assert all(p.requires_grad for p in model.layers[1].parameters())
    assert model.layers[1].training
    assert not any(m.training for m in model.modules()
                   if isinstance(m, _BatchNorm))
    model = LightXception(0.5).train()
    assert all(m.training for m in model.modules())


def test_with_cp_same_output_and_gradients():
    torch.manual_seed(0)
    plain = LightXception(0.5, out_indices=(1, 2)).train()
    cp = LightXception(0.5, out_indices=(1, 2), with_cp=True).train()
    cp.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    for model in (plain, cp):
        sum(o.sum() for o in model(x)).backward()
    for (name, a), b in zip(plain.named_parameters(), cp.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_loads_an_mmpretrain_classifier_checkpoint(tmp_path):
    source = LightXception(0.5)
    state = {f'backbone.{k}': v + 1 if v.is_floating_point() else v
             for k, v in source.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(1000, 288)
    path = str(tmp_path / 'classifier.pth')
    save_checkpoint(dict(state_dict=state), path)
    model = LightXception(0.5, init_cfg=dict(type='Pretrained',
                                             checkpoint=path))
    model.init_weights()
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[f'backbone.{key}']), key
