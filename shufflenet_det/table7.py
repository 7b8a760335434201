"""The ShuffleNet V2 paper's Table 7, in one place.

Five backbone families at four complexity levels, each a Light-Head R-CNN
trained on COCO at 800x1200 (Ma et al., ECCV 2018, Sec. 4.2). This module
holds the paper's figures and, for every cell, the backbone that realises
it; configs (through the ``Table7Backbone`` builder), tools and tests read
it from here.
"""
import copy

FAMILIES = ('xception', 'shufflenetv1', 'mobilenetv2', 'shufflenetv2',
            'shufflenetv2star')
LEVELS = ('40M', '140M', '300M', '500M')

#: Table 7, COCO minival mmAP (%), 800x1200.
PAPER_MMAP = {
    'xception': (21.9, 29.0, 31.3, 32.9),
    'shufflenetv1': (20.9, 27.0, 29.9, 32.9),
    'mobilenetv2': (20.7, 24.4, 30.0, 30.6),
    'shufflenetv2': (22.5, 29.0, 31.8, 33.3),
    'shufflenetv2star': (23.7, 29.6, 32.2, 34.2),
}
#: Table 7, images/s, batch 4, one GTX 1080 Ti, cuDNN benchmark.
PAPER_SPEED = {
    'xception': (178, 131, 101, 83),
    'shufflenetv1': (152, 85, 76, 60),
    'mobilenetv2': (146, 111, 94, 72),
    'shufflenetv2': (188, 146, 109, 87),
    'shufflenetv2star': (183, 138, 105, 83),
}
#: Classification MFLOPs (multiply-adds, 224x224, with the classifier),
#: Tables 5 and 8. The paper gives none for V2*: "a few" above V2.
PAPER_MFLOPS = {
    'xception': (40, 145, 305, 525),
    'shufflenetv1': (38, 140, 292, 524),
    'mobilenetv2': (39, 141, 300, 585),
    'shufflenetv2': (41, 146, 299, 591),
    'shufflenetv2star': (41, 146, 299, 591),
}
DISPLAY_NAMES = {
    'xception': 'Xception', 'shufflenetv1': 'ShuffleNet v1',
    'mobilenetv2': 'MobileNet v2', 'shufflenetv2': 'ShuffleNet v2',
    'shufflenetv2star': 'ShuffleNet v2*'
}

# family -> (backbone type, width argument, widths per level, extra args,
#            detection out_indices (C4 stride 16, C5 stride 32))
_FAMILY_SPECS = {
    'shufflenetv2': ('ShuffleNetV2', 'widen_factor', (0.5, 1.0, 1.5, 2.0),
                     {}, (1, 3)),
    'shufflenetv2star': ('ShuffleNetV2Star', 'widen_factor',
                         (0.5, 1.0, 1.5, 2.0), {}, (1, 3)),
    # g = 3 as in the paper's comparisons; V1 has no conv5: C5 = stage4.
    'shufflenetv1': ('ShuffleNetV1', 'widen_factor', (0.5, 1.0, 1.5, 2.0),
                     dict(groups=3), (1, 2)),
    # C4 = layer5 (stride 16), C5 = the last 1x1 conv (stride 32).
    'mobilenetv2': ('MobileNetV2Paper', 'widen_factor',
                    (0.15, 0.6, 1.0, 1.4), {}, (4, 7)),
    'xception': ('LightXception', 'widen_factor', (0.5, 1.0, 1.5, 2.0), {},
                 (1, 2)),
}


def _check(family, level):
    if family not in _FAMILY_SPECS:
        raise ValueError(f'unknown Table 7 family {family!r}; valid: '
                         f'{", ".join(FAMILIES)}')
    if level not in LEVELS:
        raise ValueError(f'unknown Table 7 level {level!r}; valid: '
                         f'{", ".join(LEVELS)}')


def cells():
    """All (family, level) pairs, in the paper's row and column order."""
    return [(f, lv) for f in FAMILIES for lv in LEVELS]


def backbone_cfg(family, level, detection=True, **overrides):
    """A fresh config dict of the cell's backbone.

    ``detection=True`` selects (C4, C5) for Light-Head R-CNN; False gives the
    classification form (the deepest feature only).
    """
    _check(family, level)
    type_, width_key, widths, extra, det_indices = _FAMILY_SPECS[family]
    cfg = dict(type=type_, **{width_key: widths[LEVELS.index(level)]},
               **copy.deepcopy(extra))
    cfg['out_indices'] = det_indices if detection else (det_indices[-1], )
    cfg.update(overrides)
    return cfg


def paper(family, level):
    """The paper's figures for a cell: mmap, speed, mflops."""
    _check(family, level)
    i = LEVELS.index(level)
    return dict(mmap=PAPER_MMAP[family][i], speed=PAPER_SPEED[family][i],
                mflops=PAPER_MFLOPS[family][i])
