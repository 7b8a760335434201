"""The Table 7 cells: names, configs, the builder, C4/C5, FLOPs, and the
ImageNet pretraining configs of the cells without public weights."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import save_checkpoint

import shufflenet_det  # noqa: F401
from mmdet.registry import MODELS
from shufflenet_det import table7
from shufflenet_det.benchmark.complexity import classification_complexity

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


def test_cells_and_paper_figures():
    cells = table7.cells()
    assert len(cells) == 20 and len(set(cells)) == 20
    assert cells[0] == ('xception', '40M')
    assert cells[-1] == ('shufflenetv2star', '500M')
    assert set(table7.FAMILIES) == {'shufflenetv2', 'shufflenetv2star',
                                    'shufflenetv1', 'mobilenetv2',
                                    'xception'}
    assert table7.paper('shufflenetv2star', '500M') == dict(
        mmap=34.2, speed=83, mflops=591)
    assert table7.paper('mobilenetv2', '140M') == dict(mmap=24.4, speed=111,
                                                       mflops=141)
    assert table7.paper('xception', '40M')['mflops'] == 40
    assert table7.PAPER_MFLOPS['shufflenetv2star'] == \
        table7.PAPER_MFLOPS['shufflenetv2']
    assert 'v2' in table7.cell('shufflenetv2star', '40M')['paper_mflops_note']
    assert table7.cell('shufflenetv2', '40M')['paper_mflops_note'] is None


def test_backbone_cfg_forms_and_overrides():
    det = table7.backbone_cfg('mobilenetv2', '140M')
    assert det == dict(type='MobileNetV2Paper', widen_factor=0.6, divisor=10,
                       out_indices=(4, 7))
    cls = table7.backbone_cfg('mobilenetv2', '140M', detection=False)
    assert cls['out_indices'] == (7, )
    cfg = table7.backbone_cfg('shufflenetv1', '300M', frozen_stages=1,
                              init_cfg=dict(type='Pretrained', checkpoint='x'))
    assert cfg['groups'] == 3 and cfg['frozen_stages'] == 1
    cfg['groups'] = 8  # a fresh dict every time
    assert table7.backbone_cfg('shufflenetv1', '300M')['groups'] == 3


@pytest.mark.parametrize('call', [
    lambda: table7.backbone_cfg('resnet', '140M'),
    lambda: table7.paper('resnet', '140M'),
    lambda: table7.cell('resnet', '140M'),
    lambda: MODELS.build(dict(type='Table7Backbone', family='resnet',
                              level='140M')),
])
def test_unknown_family_lists_the_valid_ones(call):
    with pytest.raises(ValueError) as e:
        call()
    assert 'resnet' in str(e.value)
    for family in table7.FAMILIES:
        assert family in str(e.value)


@pytest.mark.parametrize('level', ['145M', '140m', 140])
def test_unknown_level_lists_the_valid_ones(level):
    with pytest.raises(ValueError) as e:
        MODELS.build(dict(type='Table7Backbone', family='xception',
                          level=level))
    for valid in table7.LEVELS:
        assert valid in str(e.value)


def test_builder_passes_overrides():
    model = MODELS.build(dict(type='Table7Backbone', family='xception',
                              level='40M', frozen_stages=1, norm_eval=True))
    assert type(model).__name__ == 'LightXception'
    assert model.frozen_stages == 1 and model.norm_eval
    assert model.out_indices == (1, 2)
    model = MODELS.build(dict(type='Table7Backbone', family='xception',
                              level='40M', detection=False))
    assert model.out_indices == (2, )


@pytest.mark.parametrize('family,level', table7.cells())
def test_cell_c4_c5_and_flops(family, level):
    """Detection outputs at strides 16/32 with the table's channels, and
    the classification FLOPs within 5% of the paper (Tables 5 and 8)."""
    cell = table7.cell(family, level)
    model = MODELS.build(dict(type='Table7Backbone', family=family,
                              level=level)).eval()
    with torch.no_grad():
        c4, c5 = model(torch.zeros(1, 3, 64, 96))
    assert c4.shape == (1, cell['c4_channels'], 4, 6)
    assert c5.shape == (1, cell['c5_channels'], 2, 3)
    assert model.out_indices == (cell['c4_index'], cell['c5_index'])
    # The last detection output (C5) is the classification feature.
    mflops, _ = classification_complexity(model)
    assert abs(mflops / cell['paper_mflops'] - 1) < 0.05, mflops
    if family == 'shufflenetv2star':  # "a few" MFLOPs above v2
        v2, _ = classification_complexity(
            MODELS.build(table7.backbone_cfg('shufflenetv2', level,
                                             detection=False)))
        assert 0 < mflops - v2 < 10


# ---------------------------------------------------- ImageNet pretraining
PRETRAIN = sorted(glob.glob(f'{ROOT}/configs/pretrain/*_in1k.py'))


def test_pretrain_configs_cover_all_20_cells():
    """One recipe for every backbone, as the paper pretrained them all."""
    names = {osp.basename(p).split('_16xb64')[0] for p in PRETRAIN}
    assert names == {f'{f}_{lv.lower()}' for f, lv in table7.cells()}
    for path in PRETRAIN:
        cfg = Config.fromfile(path)
        backbone = cfg.model.backbone
        cell = table7.cell(backbone.family, backbone.level)
        assert cfg.model.head.in_channels == cell['c5_channels'], path
        assert osp.basename(path).startswith(
            f'{backbone.family}_{backbone.level.lower()}_')


def test_pretrained_classifier_loads_into_the_detection_backbone(tmp_path):
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    from mmpretrain.structures import DataSample

    cfg = Config.fromfile(
        f'{ROOT}/configs/pretrain/xception_40m_16xb64_in1k.py')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        classifier = PRETRAIN_MODELS.build(cfg.model)
    samples = [DataSample().set_gt_label(i) for i in (1, 2)]
    loss = classifier(torch.randn(2, 3, 64, 64), samples, mode='loss')
    loss['loss'].backward()
    path = str(tmp_path / 'epoch_300.pth')
    save_checkpoint(dict(state_dict=classifier.state_dict()), path)

    detection = MODELS.build(dict(
        type='Table7Backbone', family='xception', level='40M',
        init_cfg=dict(type='Pretrained', checkpoint=path)))
    detection.init_weights()
    trained = classifier.backbone.state_dict()
    for key, value in detection.state_dict().items():
        assert torch.equal(value, trained[key]), key
