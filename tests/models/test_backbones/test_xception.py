"""LightXception: shapes and strides, the block, freezing, loading."""
import pytest
import torch
from mmengine.runner import save_checkpoint
from torch.nn.modules.batchnorm import _BatchNorm

import shufflenet_det  # noqa: F401
from mmdet.registry import MODELS
from shufflenet_det.models.backbones.xception import (LightXception,
                                                      XceptionBlock)

# widen_factor -> channels of out_indices 0, 1, 2 (docstring table)
CHANNELS = {
    0.5: (64, 128, 256),
    1.0: (128, 256, 512),
    1.5: (192, 384, 768),
    2.0: (256, 512, 1024),
}


@pytest.mark.parametrize('width', list(CHANNELS))
def test_every_output_index(width):
    model = MODELS.build(dict(type='LightXception', widen_factor=width,
                              out_indices=(0, 1, 2))).eval()
    assert model.out_channels == CHANNELS[width]
    with torch.no_grad():
        outs = model(torch.zeros(1, 3, 64, 96))
    assert [o.shape for o in outs] == [
        (1, c, 64 // s, 96 // s) for c, s in zip(CHANNELS[width], (8, 16, 32))
    ]


def test_block():
    block = XceptionBlock(24, 128, stride=2).eval()
    # three separable convs in -> out/4 -> out/4 -> out, stride on the first
    dws = [m for m in block.convs.modules()
           if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert [(m.in_channels, m.stride) for m in dws] == [(24, (2, 2)),
                                                        (32, (1, 1)),
                                                        (32, (1, 1))]
    assert block.shortcut is not None
    assert block(torch.zeros(1, 24, 16, 16)).shape == (1, 128, 8, 8)
    identity = XceptionBlock(64, 64)
    assert identity.shortcut is None
    # 7x7 receptive field (three 3x3 convs): one output pixel depends on
    # the input up to 3 pixels away, not 4.
    torch.manual_seed(0)
    x = torch.randn(1, 64, 15, 15, requires_grad=True)
    identity.eval()(x)[0, :, 7, 7].sum().backward()
    seen = x.grad.abs().sum(dim=(0, 1)).gt(0)
    window = torch.zeros(15, 15, dtype=torch.bool)
    window[4:11, 4:11] = True
    assert seen[window].any() and seen[4, 4] and seen[10, 10]
    assert not seen[~window].any()


def test_bad_arguments():
    with pytest.raises(ValueError, match='widen_factor'):
        LightXception(widen_factor=0.75)
    with pytest.raises(ValueError, match='out_indices'):
        LightXception(out_indices=(3, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        LightXception(frozen_stages=4)


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
    state['head.fc.weight'] = torch.zeros(1000, 256)
    path = str(tmp_path / 'classifier.pth')
    save_checkpoint(dict(state_dict=state), path)
    model = LightXception(0.5, init_cfg=dict(type='Pretrained',
                                             checkpoint=path))
    model.init_weights()
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[f'backbone.{key}']), key
