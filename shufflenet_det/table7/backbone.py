from mmdet.registry import MODELS

from .cells import backbone_cfg


@MODELS.register_module(name='Table7Backbone')
def build_table7_backbone(family, level, detection=True, **overrides):
    """Build the backbone of a cell of the ShuffleNet V2 paper's Table 7.

    Registered in mmdet's ``MODELS`` as ``Table7Backbone``, so that a config
    names a cell instead of repeating its arguments (configs cannot import
    :mod:`shufflenet_det.table7`, which holds them)::

        backbone=dict(type='Table7Backbone', family='shufflenetv1',
                      level='300M', frozen_stages=1, norm_eval=True,
                      init_cfg=dict(type='Pretrained', checkpoint=...))

    Args:
        family (str): 'xception', 'shufflenetv1', 'mobilenetv2',
            'shufflenetv2' or 'shufflenetv2star'.
        level (str): '40M', '140M', '300M' or '500M'.
        detection (bool): True: out_indices (C4, C5), as Light-Head R-CNN
            reads them; False: the deepest feature only. Default: True.
        **overrides: any other argument of the backbone class; it replaces
            the cell's value.

    Returns:
        nn.Module: the backbone (e.g. a ``ShuffleNetV1``).

    Raises:
        ValueError: unknown family or level; the message lists the valid
            ones.
    """
    cfg = backbone_cfg(family, level, detection, **overrides)
    # Our backbones live in mmdet's registry: build there even when another
    # scope is the default (mmpretrain's, in configs/pretrain/).
    cfg['_scope_'] = 'mmdet'
    return MODELS.build(cfg)
