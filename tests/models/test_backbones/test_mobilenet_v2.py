"""MobileNetV2Paper: shapes and strides, freezing, checkpoint layouts."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torchvision
from mmengine.runner import save_checkpoint
from torch.nn.modules.batchnorm import _BatchNorm

import shufflenet_det  # noqa: F401
from mmdet.registry import MODELS
from shufflenet_det.models.backbones.converters import convert_command
from shufflenet_det.models.backbones.mobilenet_v2 import (
    MOBILENET_V2_CONVERTERS, MobileNetV2Paper, mmpretrain_to_mobilenet_v2,
    torchvision_to_mobilenet_v2)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
STRIDES = (2, 4, 8, 16, 16, 32, 32, 32)
# widen_factor, divisor -> channels of out_indices 0..7 (docstring table)
CHANNELS = {
    (0.15, 10): (10, 10, 10, 10, 20, 30, 50, 1280),
    (0.6, 10): (10, 20, 20, 40, 60, 100, 190, 1280),
    (1.0, 8): (16, 24, 32, 64, 96, 160, 320, 1280),
    (1.4, 8): (24, 32, 48, 88, 136, 224, 448, 1792),
}


@pytest.mark.parametrize('width,divisor', list(CHANNELS))
def test_every_output_index(width, divisor):
    model = MobileNetV2Paper(width, divisor, out_indices=range(8)).eval()
    assert model.out_channels == CHANNELS[width, divisor]
    with torch.no_grad():
        outs = model(torch.zeros(1, 3, 64, 96))
    assert len(outs) == 8
    for out, channels, stride in zip(outs, CHANNELS[width, divisor],
                                     STRIDES):
        assert out.shape == (1, channels, 64 // stride, 96 // stride)


def test_registered_and_distinct_from_mmdet():
    model = MODELS.build(dict(type='MobileNetV2Paper', widen_factor=0.6,
                              divisor=10, out_indices=(4, 7)))
    assert isinstance(model, MobileNetV2Paper)
    assert type(MODELS.build(dict(type='MobileNetV2'))).__module__.startswith(
        'mmdet.')


def test_divisor_8_is_mmdets_network():
    ours = MobileNetV2Paper(0.6, divisor=8)
    theirs = MODELS.build(dict(type='MobileNetV2', widen_factor=0.6))
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()}


def test_bad_arguments():
    with pytest.raises(ValueError, match='out_indices'):
        MobileNetV2Paper(out_indices=(8, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        MobileNetV2Paper(frozen_stages=8)
    with pytest.raises(ValueError, match='divisor'):
        MobileNetV2Paper(divisor=0)


def test_frozen_stages_and_norm_eval():
    model = MobileNetV2Paper(0.15, 10, frozen_stages=2, norm_eval=True)
    model.train()
    for frozen in (model.conv1, model.layer1, model.layer2):
        assert not any(p.requires_grad for p in frozen.parameters())
        assert not any(m.training for m in frozen.modules())
    assert all(p.requires_grad for p in model.layer3.parameters())
    assert model.layer3.training  # norm_eval: only the BNs are in eval
    assert not any(m.training for m in model.modules()
                   if isinstance(m, _BatchNorm))
    model = MobileNetV2Paper(0.15, 10, frozen_stages=-1).train()
    assert all(p.requires_grad for p in model.parameters())
    assert all(m.training for m in model.modules())


def _randomized(model):
    """``model`` with random weights and BN statistics (reproducible)."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype.is_floating_point:
                r = torch.rand(t.shape, generator=gen)
                t.copy_(r + 0.5 if name.endswith('running_var') else r - 0.5)
    return model.eval()


def test_torchvision_weights_give_torchvision_features(tmp_path):
    tv = _randomized(torchvision.models.mobilenet_v2(weights=None))
    path = str(tmp_path / 'mobilenet_v2_tv.pth')
    torch.save(tv.state_dict(), path)  # a bare state dict, as torchvision's
    ours = MobileNetV2Paper(1.0, divisor=8, out_indices=(7, ),
                            init_cfg=dict(type='Pretrained', checkpoint=path))
    ours.init_weights()
    converted = torchvision_to_mobilenet_v2(tv.state_dict())
    assert set(converted) == set(ours.state_dict())
    x = torch.randn(2, 3, 96, 64)
    with torch.no_grad():
        expected = tv.features(x)
        got = ours.eval()(x)[0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_mmpretrain_and_own_layouts_load(tmp_path):
    ours = _randomized(MobileNetV2Paper(0.6, 10))
    own = ours.state_dict()
    # mmpretrain's blocks: conv.0/1/2 = expand, depthwise, linear
    # (conv.0/1 = depthwise, linear in layer1, which does not expand).
    names = {'expand_conv': 0, 'depthwise_conv': 1, 'linear_conv': 2}
    mmpretrain = {}
    for key, value in own.items():
        parts = key.split('.')
        if parts[0].startswith('layer'):
            pos = names[parts[2]] - (parts[0] == 'layer1')
            parts[2] = f'conv.{pos}'
        mmpretrain['backbone.' + '.'.join(parts)] = value
    mmpretrain['head.fc.weight'] = torch.zeros(1000, 1280)
    converted = mmpretrain_to_mobilenet_v2(
        {k[len('backbone.'):]: v for k, v in mmpretrain.items()
         if k.startswith('backbone.')})
    assert set(converted) == set(own)
    assert all(torch.equal(converted[k], own[k]) for k in own)
    for name, state in (('mmpretrain', mmpretrain), ('own', own)):
        path = str(tmp_path / f'{name}.pth')
        save_checkpoint(dict(state_dict=state), path)
        model = MobileNetV2Paper(
            0.6, 10, init_cfg=dict(type='Pretrained', checkpoint=path))
        model.init_weights()
        for key, value in model.state_dict().items():
            assert torch.equal(value, own[key]), (name, key)


def test_converter_list_recognises_layouts():
    tv = torchvision.models.mobilenet_v2(weights=None).state_dict()
    detected = [name for name, detect, _ in MOBILENET_V2_CONVERTERS
                if detect(tv)]
    assert detected == ['torchvision']
    own = MobileNetV2Paper().state_dict()
    assert not any(detect(own) for _, detect, _ in MOBILENET_V2_CONVERTERS)


def test_convert_command(tmp_path, capsys):
    tv = _randomized(torchvision.models.mobilenet_v2(weights=None))
    src, dst = str(tmp_path / 'tv.pth'), str(tmp_path / 'ours.pth')
    torch.save(tv.state_dict(), src)
    assert convert_command(src, dst, MOBILENET_V2_CONVERTERS) is None
    converted = torch.load(dst, weights_only=True)['state_dict']
    assert capsys.readouterr().out == \
        f'{src} (torchvision) -> {dst}: {len(converted)} tensors\n'
    ours = MobileNetV2Paper(1.0, 8)
    assert set(converted) == set(ours.state_dict())
    # mmdet's own MobileNetV2 has the same layout
    MODELS.build(dict(type='MobileNetV2')).load_state_dict(converted)
    torch.save(ours.state_dict(), src)  # ours: nothing to convert
    error = convert_command(src, dst, MOBILENET_V2_CONVERTERS)
    assert error.startswith('error: ') and 'not a layout' in error


def test_converter_tool(tmp_path):
    """tools/model_converters/torchvision2mobilenetv2.py, as users run it."""
    tv = torchvision.models.mobilenet_v2(weights=None)
    src, dst = str(tmp_path / 'tv.pth'), str(tmp_path / 'ours.pth')
    torch.save(tv.state_dict(), src)
    tool = osp.join(ROOT, 'tools', 'model_converters',
                    'torchvision2mobilenetv2.py')
    run = subprocess.run([sys.executable, tool, src, dst], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert f'{src} (torchvision) -> {dst}:' in run.stdout
    converted = torch.load(dst, weights_only=True)['state_dict']
    assert set(converted) == set(MobileNetV2Paper(1.0, 8).state_dict())
