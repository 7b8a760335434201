"""The ShuffleNet V2 paper's Table 7, in one place.

Five backbone families at four complexity levels, each a Light-Head R-CNN
trained on COCO at 800x1200 (Ma et al., ECCV 2018, Sec. 4.2). This module
holds the paper's figures and, for every cell, the backbone that realises
it: its config, the indices of its C4 (stride 16, RPN input) and C5
(stride 32, input of the thin feature map) outputs and their channels.
Configs read it through the ``Table7Backbone`` builder
(:mod:`shufflenet_det.table7.backbone`); tools and tests import it.

    from shufflenet_det import table7
    table7.backbone_cfg('mobilenetv2', '140M')
    # {'type': 'MobileNetV2Paper', 'widen_factor': 0.6, 'divisor': 10,
    #  'out_indices': (4, 7)}
    table7.cell('xception', '300M')['c4_channels']  # 432
"""
import copy

#: Families in the paper's row order, levels in its column order.
FAMILIES = ('xception', 'shufflenetv1', 'mobilenetv2', 'shufflenetv2',
            'shufflenetv2star')
LEVELS = ('40M', '140M', '300M', '500M')
DISPLAY_NAMES = {
    'xception': 'Xception',
    'shufflenetv1': 'ShuffleNet v1',
    'mobilenetv2': 'MobileNet v2',
    'shufflenetv2': 'ShuffleNet v2',
    'shufflenetv2star': 'ShuffleNet v2*',
}

#: Table 7: COCO minival mmAP (%), 800x1200.
PAPER_MMAP = {
    'xception': (21.9, 29.0, 31.3, 32.9),
    'shufflenetv1': (20.9, 27.0, 29.9, 32.9),
    'mobilenetv2': (20.7, 24.4, 30.0, 30.6),
    'shufflenetv2': (22.5, 29.0, 31.8, 33.3),
    'shufflenetv2star': (23.7, 29.6, 32.2, 34.2),
}
#: Table 7: images/s, batch 4, one GTX 1080 Ti, cuDNN benchmark on.
PAPER_SPEED = {
    'xception': (178, 131, 101, 83),
    'shufflenetv1': (152, 85, 76, 60),
    'mobilenetv2': (146, 111, 94, 72),
    'shufflenetv2': (188, 146, 109, 87),
    'shufflenetv2star': (183, 138, 105, 83),
}
#: Classification MFLOPs (multiply-adds, 224x224, classifier included):
#: Table 5 for ShuffleNet v2, Table 8 for the others.
PAPER_MFLOPS = {
    'xception': (40, 145, 305, 525),
    'shufflenetv1': (38, 140, 292, 524),
    'mobilenetv2': (39, 141, 300, 585),
    'shufflenetv2': (41, 146, 299, 591),
    'shufflenetv2star': (41, 146, 299, 591),
}
#: Where a figure above is not the paper's own.
PAPER_MFLOPS_NOTES = {
    'shufflenetv2star': 'the paper gives no FLOPs for v2*; this is v2\'s '
    'figure (v2* adds "a few", Sec. 4.2)',
}

#: family -> the backbone of each level:
#:   type: registered backbone class;
#:   args: its arguments at 40M, 140M, 300M, 500M;
#:   out_indices: the detection outputs (C4 stride 16, C5 stride 32); the
#:     classification form returns C5 alone, the feature the classifier
#:     pools in every family;
#:   channels: (C4, C5) channels at each level.
BACKBONES = {
    'xception': dict(
        type='LightXception',
        args=[dict(widen_factor=w) for w in (0.5, 1.0, 1.5, 2.0)],
        out_indices=(1, 2),  # stage3, stage4 (no 1x1 conv after stage4)
        # Light-Head R-CNN's 144/288/576 times the width (Table 8)
        channels=((144, 288), (288, 576), (432, 864), (576, 1152))),
    'shufflenetv1': dict(
        type='ShuffleNetV1',
        # g = 3, the paper's comparison (Table 8)
        args=[dict(groups=3, widen_factor=w) for w in (0.5, 1.0, 1.5, 2.0)],
        out_indices=(1, 2),  # stage3, stage4 (V1 has no conv5)
        channels=((240, 480), (480, 960), (720, 1440), (960, 1920))),
    'mobilenetv2': dict(
        type='MobileNetV2Paper',
        # divisor 10 lands 0.15 and 0.6 on Table 8 (8 misses by -22%/+7%)
        args=[dict(widen_factor=0.15, divisor=10),
              dict(widen_factor=0.6, divisor=10),
              dict(widen_factor=1.0, divisor=8),
              dict(widen_factor=1.4, divisor=8)],
        out_indices=(4, 7),  # layer5, conv2 (the last 1x1 conv)
        channels=((20, 1280), (60, 1280), (96, 1280), (136, 1792))),
    'shufflenetv2': dict(
        type='ShuffleNetV2',
        args=[dict(widen_factor=w) for w in (0.5, 1.0, 1.5, 2.0)],
        out_indices=(1, 3),  # stage3, conv5
        channels=((96, 1024), (232, 1024), (352, 1024), (488, 2048))),
    'shufflenetv2star': dict(
        type='ShuffleNetV2Star',
        args=[dict(widen_factor=w) for w in (0.5, 1.0, 1.5, 2.0)],
        out_indices=(1, 3),  # stage3, conv5
        channels=((96, 1024), (232, 1024), (352, 1024), (488, 2048))),
}


def _index(family, level):
    """Check the names; the level's column index."""
    if family not in BACKBONES:
        raise ValueError(f'unknown Table 7 family {family!r}; valid: '
                         f'{", ".join(FAMILIES)}')
    if level not in LEVELS:
        raise ValueError(f'unknown Table 7 level {level!r} (family '
                         f'{family!r}); valid: {", ".join(LEVELS)}')
    return LEVELS.index(level)


def cells():
    """All (family, level) pairs, in the paper's row and column order."""
    return [(f, lv) for f in FAMILIES for lv in LEVELS]


def backbone_cfg(family, level, detection=True, **overrides):
    """A fresh config dict of the cell's backbone, ready for
    ``MODELS.build``.

    Args:
        family (str): one of :data:`FAMILIES`.
        level (str): one of :data:`LEVELS`.
        detection (bool): True: ``out_indices`` = (C4, C5), what
            Light-Head R-CNN reads; False: the classification form, (C5, )
            only, the deepest feature. Default: True.
        **overrides: set or replace any argument (``frozen_stages``,
            ``norm_eval``, ``init_cfg``, ``out_indices`` ...).

    Raises:
        ValueError: unknown family or level (the message lists the valid
            ones).
    """
    i = _index(family, level)
    spec = BACKBONES[family]
    indices = spec['out_indices'] if detection else spec['out_indices'][-1:]
    cfg = dict(type=spec['type'], **copy.deepcopy(spec['args'][i]),
               out_indices=tuple(indices))
    cfg.update(copy.deepcopy(overrides))
    return cfg


def paper(family, level):
    """The paper's figures for a cell: ``mmap`` (%), ``speed`` (images/s)
    and ``mflops`` (classification, see :data:`PAPER_MFLOPS_NOTES`)."""
    i = _index(family, level)
    return dict(mmap=PAPER_MMAP[family][i], speed=PAPER_SPEED[family][i],
                mflops=PAPER_MFLOPS[family][i])


def cell(family, level):
    """Everything about a cell: the names, the detection backbone config,
    the C4/C5 indices and channels, and the paper's figures."""
    i = _index(family, level)
    spec = BACKBONES[family]
    c4, c5 = spec['out_indices']
    c4_channels, c5_channels = spec['channels'][i]
    return dict(
        family=family, level=level, name=DISPLAY_NAMES[family],
        backbone=backbone_cfg(family, level),
        c4_index=c4, c5_index=c5,
        c4_channels=c4_channels, c5_channels=c5_channels,
        paper_mflops_note=PAPER_MFLOPS_NOTES.get(family),
        **{f'paper_{k}': v for k, v in paper(family, level).items()})
