"""``init_cfg`` as a list (mmengine allows it) takes the project's loading
path: the converters, the stated input, and ShuffleNet V2*'s extra
depthwise convs kept as the checkpoint has them."""
import pytest
import torch

import shufflenet_det  # noqa: F401
from mmdet.registry import MODELS
from shufflenet_det import table7
from shufflenet_det.models.backbones.shufflenet_v2 import ShuffleUnitV2

torchvision = pytest.importorskip('torchvision')

KAIMING = dict(type='Kaiming', layer='Conv2d')


def build(family, init_cfg):
    torch.manual_seed(1)
    net = MODELS.build(table7.backbone_cfg(family, '40M', init_cfg=init_cfg))
    net.init_weights()
    return net


def test_a_foreign_layout_is_converted(tmp_path):
    """torchvision's ShuffleNet V2 0.5x under a list: the converter runs
    (mmengine's own PretrainedInit would load no key of that layout and
    leave the random weights) and the input is the torchvision one."""
    torch.manual_seed(0)
    src = torchvision.models.shufflenet_v2_x0_5()
    ckpt = str(tmp_path / 'tv.pth')
    torch.save(src.state_dict(), ckpt)
    as_dict = build('shufflenetv2', dict(type='Pretrained', checkpoint=ckpt))
    as_list = build('shufflenetv2',
                    [KAIMING, dict(type='Pretrained', checkpoint=ckpt)])
    a, b = as_dict.state_dict(), as_list.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the first conv is torchvision's, not Kaiming's
    assert torch.equal(b['conv1.conv.weight'], src.conv1[0].weight)
    assert as_list.pretrained_input['bgr_to_rgb'] is True
    assert as_list.pretrained_input['source'] == 'torchvision layout'


def test_v2star_extra_dw_are_the_checkpoints(tmp_path):
    torch.manual_seed(0)
    src = MODELS.build(table7.backbone_cfg('shufflenetv2star', '40M'))
    extra = [k for k in src.state_dict() if 'extra_dw' in k
             and k.endswith('conv.weight')]
    assert extra
    state = src.state_dict()
    for k in extra:  # far from the identity the fresh network starts at
        state[k] = torch.randn_like(state[k])
    ckpt = str(tmp_path / 'v2star.pth')
    torch.save(state, ckpt)
    net = build('shufflenetv2star',
                [KAIMING, dict(type='Pretrained', checkpoint=ckpt)])
    loaded = net.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_v2star_extra_dw_start_as_identity_when_the_checkpoint_lacks_them(
        tmp_path):
    torch.manual_seed(0)
    src = MODELS.build(table7.backbone_cfg('shufflenetv2star', '40M'))
    state = {k: v for k, v in src.state_dict().items() if 'extra_dw' not in k}
    ckpt = str(tmp_path / 'v2.pth')
    torch.save(state, ckpt)
    net = build('shufflenetv2star',
                [KAIMING, dict(type='Pretrained', checkpoint=ckpt)])
    conv = next(m.extra_dw.conv for m in net.modules()
                if isinstance(m, ShuffleUnitV2) and m.extra_dw is not None)
    identity = torch.zeros_like(conv.weight)
    torch.nn.init.dirac_(identity, groups=conv.groups)
    assert torch.equal(conv.weight, identity)


@pytest.mark.parametrize('family', ['shufflenetv1', 'mobilenetv2',
                                    'xception'])
def test_every_family_loads_under_a_list(tmp_path, family):
    torch.manual_seed(0)
    src = MODELS.build(table7.backbone_cfg(family, '40M'))
    state = {k: v + 0.5 if v.is_floating_point() else v
             for k, v in src.state_dict().items()}
    ckpt = str(tmp_path / f'{family}.pth')
    torch.save(state, ckpt)
    net = build(family, [KAIMING, dict(type='Pretrained', checkpoint=ckpt)])
    loaded = net.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_two_checkpoints_are_refused(tmp_path):
    with pytest.raises(ValueError, match='2 Pretrained entries'):
        build('shufflenetv2', [dict(type='Pretrained', checkpoint='a.pth'),
                               dict(type='Pretrained', checkpoint='b.pth')])
