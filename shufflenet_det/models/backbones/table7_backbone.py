from mmdet.registry import MODELS

from ...table7 import backbone_cfg


@MODELS.register_module(name='Table7Backbone')
def build_table7_backbone(family, level, **overrides):
    """Builds the backbone of a Table 7 cell (``shufflenet_det.table7``).

    In a config: ``backbone=dict(type='Table7Backbone', family='shufflenetv1',
    level='300M', frozen_stages=1, init_cfg=...)``; any other key overrides
    the cell's arguments. The detection form, out_indices (C4, C5), is the
    default.
    """
    return MODELS.build(backbone_cfg(family, level, **overrides))
