"""The ShuffleNet V2 paper's Table 7: its cells and figures
(:mod:`.cells`, re-exported here) and the ``Table7Backbone`` builder that
configs name (:mod:`.backbone`).

    from shufflenet_det import table7
    table7.backbone_cfg('mobilenetv2', '140M')
"""
from .backbone import build_table7_backbone
from .cells import (BACKBONES, DISPLAY_NAMES, FAMILIES, LEVELS, PAPER_MFLOPS,
                    PAPER_MFLOPS_NOTES, PAPER_MMAP, PAPER_SPEED, backbone_cfg,
                    cell, cells, paper)

__all__ = [
    'BACKBONES', 'DISPLAY_NAMES', 'FAMILIES', 'LEVELS', 'PAPER_MFLOPS',
    'PAPER_MFLOPS_NOTES', 'PAPER_MMAP', 'PAPER_SPEED', 'backbone_cfg',
    'build_table7_backbone', 'cell', 'cells', 'paper'
]
