"""load_pretrained: unwrapping, prefixes, conversion, and the errors a user
sees for a wrong file; the converter command-line tools."""
import logging
import os.path as osp
import subprocess
import sys

import pytest
import torch

import shufflenet_det  # noqa: F401
from shufflenet_det.models.backbones.converters import (
    MEGVII_SHUFFLENET_CONVERTERS, SHUFFLENET_V2_CONVERTERS,
    TORCHVISION_SHUFFLENET_CONVERTERS, convert_command,
    torchvision_to_shufflenet_v2)
from shufflenet_det.models.backbones.pretrained import (
    IMAGENET_RGB, RAW_BGR, CheckpointMismatchError, checkpoint_input,
    load_pretrained)
from shufflenet_det.models.backbones.shufflenet_v2 import ShuffleNetV2

torchvision = pytest.importorskip('torchvision')
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


def _model(widen_factor=0.5, **kwargs):
    return ShuffleNetV2(widen_factor=widen_factor, out_indices=(0, 1, 2, 3),
                        **kwargs)


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def source():
    torch.manual_seed(0)
    model = _model()
    model.init_weights()
    return model


@pytest.mark.parametrize('wrap', ['bare', 'state_dict', 'model', 'module',
                                  'backbone'])
def test_wrappers_and_prefixes(tmp_path, source, wrap):
    state = source.state_dict()
    if wrap == 'state_dict':
        ckpt = {'state_dict': state, 'meta': {'epoch': 3}}
    elif wrap == 'model':
        ckpt = {'model': state, 'optimizer': {}}
    elif wrap == 'module':  # DataParallel
        ckpt = {f'module.{k}': v for k, v in state.items()}
    elif wrap == 'backbone':  # an mmpretrain classifier / mmdet detector
        ckpt = {'state_dict': {
            **{f'backbone.{k}': v for k, v in state.items()},
            'head.fc.weight': torch.zeros(10, 1024),
            'neck.conv.weight': torch.zeros(1)}}
    else:
        ckpt = state
    path = str(tmp_path / 'ckpt.pth')
    torch.save(ckpt, path)
    model = _model()
    result = load_pretrained(model, path)
    assert result['missing'] == [] and result['unexpected'] == []
    assert _same_weights(model, source)


@pytest.mark.parametrize('prefix', ['student', 'backbone.'])
def test_init_cfg_prefix(tmp_path, source, prefix):
    path = str(tmp_path / 'prefixed.pth')
    p = prefix.rstrip('.')
    torch.save({f'{p}.{k}': v for k, v in source.state_dict().items()},
               path)
    model = _model(init_cfg=dict(type='Pretrained', checkpoint=path,
                                 prefix=prefix))
    model.init_weights()
    assert _same_weights(model, source)
    model = _model(init_cfg=dict(type='Pretrained', checkpoint=path,
                                 prefix='teacher'))
    with pytest.raises(ValueError, match="prefix 'teacher.'"):
        model.init_weights()


def test_convert_function_and_converter_list(tmp_path):
    tv = torchvision.models.shufflenet_v2_x0_5()
    path = str(tmp_path / 'tv.pth')
    torch.save(tv.state_dict(), path)
    a, b = _model(), _model()
    load_pretrained(a, path, convert=torchvision_to_shufflenet_v2)
    result = load_pretrained(b, path, convert=SHUFFLENET_V2_CONVERTERS)
    assert result['layout'] == 'torchvision'
    assert _same_weights(a, b)
    assert torch.equal(a.conv1.conv.weight, tv.conv1[0].weight)


def test_missing_and_unexpected_keys_are_logged(tmp_path, source, caplog):
    state = source.state_dict()
    del state['layers.3.conv.weight']
    state['layers.9.extra.weight'] = torch.zeros(3)
    path = str(tmp_path / 'partial.pth')
    torch.save(state, path)
    logger = logging.getLogger('test_pretrained')
    with caplog.at_level(logging.WARNING, logger='test_pretrained'):
        result = load_pretrained(_model(), path, logger=logger)
    assert result['missing'] == ['layers.3.conv.weight']
    assert result['unexpected'] == ['layers.9.extra.weight']
    records = [r for r in caplog.records if r.name == 'test_pretrained']
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    msg = records[0].getMessage()
    assert 'layers.3.conv.weight' in msg and 'layers.9.extra.weight' in msg


def test_wrong_network_is_a_clear_error(tmp_path):
    path = str(tmp_path / 'resnet18.pth')
    torch.save(torchvision.models.resnet18().state_dict(), path)
    model = _model(init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(ValueError) as info:
        model.init_weights()
    msg = str(info.value)
    assert isinstance(info.value, CheckpointMismatchError)
    assert path in msg and 'ShuffleNetV2' in msg
    assert 'ResNet' in msg  # what the file looks like
    assert 'torchvision' in msg  # what ShuffleNetV2 reads


def test_shape_mismatch_names_the_keys(tmp_path):
    torch.save(torchvision.models.shufflenet_v2_x1_0().state_dict(),
               str(tmp_path / 'tv1x.pth'))
    model = _model(widen_factor=0.5)  # a 1x checkpoint into 0.5x
    with pytest.raises(ValueError) as info:
        load_pretrained(model, str(tmp_path / 'tv1x.pth'),
                        convert=SHUFFLENET_V2_CONVERTERS)
    msg = str(info.value)
    assert 'layers.0.0.branch1.1.conv.weight: checkpoint (58, 24, 1, 1) ' \
        'vs model (24, 24, 1, 1)' in msg
    assert 'widen_factor' in msg


def test_megvii_v2_is_refused_with_the_reason(tmp_path):
    # The official V2 layout, at 0.5x: stage-2 shortcut keeps 24 channels.
    state = {'first_conv.0.weight': torch.zeros(24, 3, 3, 3),
             'features.0.branch_proj.0.weight': torch.zeros(24, 1, 3, 3),
             'features.0.branch_proj.3.weight': torch.zeros(24, 24, 1, 1),
             'features.0.branch_main.0.weight': torch.zeros(24, 24, 1, 1)}
    path = str(tmp_path / 'megvii_v2.pth')
    torch.save(state, path)
    with pytest.raises(ValueError, match='torchvision'):
        load_pretrained(_model(), path, convert=SHUFFLENET_V2_CONVERTERS)


def test_convert_command(tmp_path, capsys):
    tv = torchvision.models.shufflenet_v2_x0_5()
    src, dst = str(tmp_path / 'tv.pth'), str(tmp_path / 'ours.pth')
    torch.save(tv.state_dict(), src)
    assert convert_command(src, dst, TORCHVISION_SHUFFLENET_CONVERTERS) \
        is None
    n = len(torch.load(dst, weights_only=True)['state_dict'])
    assert capsys.readouterr().out == \
        f'{src} (torchvision ShuffleNet V2) -> {dst}: {n} tensors\n'
    model = _model()
    result = load_pretrained(model, dst)
    assert result['layout'] == 'own' and not result['missing']
    # The converted file states the input its weights were trained on.
    assert _input_of(dst) == IMAGENET_RGB
    assert torch.equal(model.conv1.conv.weight, tv.conv1[0].weight)
    # The megvii converters refuse a file they do not know, saying what
    # it is.
    error = convert_command(src, str(tmp_path / 'x.pth'),
                            MEGVII_SHUFFLENET_CONVERTERS)
    assert error.startswith('error: ') and 'not a layout' in error
    assert 'torchvision ShuffleNet V2' in error


def _input_of(path):
    """The input a checkpoint states (mean, std, channel order)."""
    found = checkpoint_input(torch.load(path, weights_only=True), 'own')
    assert found is not None, f'{path} states no input'
    return {k: found[k] for k in IMAGENET_RGB}


def test_a_converted_megvii_v1_file_states_raw_bgr(tmp_path):
    """The official V1 weights take BGR 0-255 (megvii ShuffleNet-Series
    ShuffleNetV1/train.py, ToBGRTensor): the converted file must say so,
    so that a config feeding it ImageNet-normalised RGB is stopped."""
    from megvii_reference import official_state

    from shufflenet_det.models.backbones.shufflenet_v1 import ShuffleNetV1
    ours = ShuffleNetV1(groups=3, widen_factor=0.5, out_indices=(2, ))
    src, dst = str(tmp_path / 'megvii.pth'), str(tmp_path / 'ours.pth')
    torch.save(dict(state_dict=official_state(ours)), src)
    assert convert_command(src, dst, MEGVII_SHUFFLENET_CONVERTERS) is None
    assert _input_of(dst) == RAW_BGR


def _run_tool(name, *args):
    """A tool of tools/model_converters/, run as users run it."""
    return subprocess.run(
        [sys.executable,
         osp.join(ROOT, 'tools', 'model_converters', f'{name}.py'), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_converter_tools(tmp_path):
    tv = torchvision.models.shufflenet_v2_x0_5()
    src, dst = str(tmp_path / 'tv.pth'), str(tmp_path / 'ours.pth')
    torch.save(tv.state_dict(), src)
    run = _run_tool('torchvision2shufflenet', src, dst)
    assert run.returncode == 0, run.stderr
    assert f'{src} (torchvision ShuffleNet V2) -> {dst}:' in run.stdout
    model = _model()
    assert load_pretrained(model, dst)['layout'] == 'own'
    assert torch.equal(model.conv1.conv.weight, tv.conv1[0].weight)
    # The megvii tool refuses a file it does not know, saying what it is.
    run = _run_tool('megvii2shufflenet', src, str(tmp_path / 'x.pth'))
    assert run.returncode == 1 and 'error: ' in run.stderr
    assert 'torchvision ShuffleNet V2' in run.stderr
