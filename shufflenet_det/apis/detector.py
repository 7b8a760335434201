"""A detector from a config (and a checkpoint), ready for inference."""
import torch


def build_detector(config, checkpoint=None, cfg_options=None, seed=0):
    """The config's model in eval mode (random weights unless a checkpoint
    is given; the backbone's ImageNet init is not loaded).

    Without a checkpoint, the weights are the model's own initialisation
    (``init_weights()``: the heads' small normal init, as at the start of
    training), drawn with ``seed``. The post-processing time depends on the
    scores (how many proposals survive NMS, how many boxes pass the score
    threshold); with PyTorch's default init instead, those counts, and so
    the timings, would vary from cell to cell for reasons unrelated to the
    backbone.

    ``cfg_options``: a dict of overrides, as mmengine's ``DictAction``
    parses ``--cfg-options``.

    With a checkpoint this is mmdet's ``init_detector`` (on the CPU; it
    also sets the checkpoint's ``dataset_meta``). Without one, ours: mmdet's
    leaves PyTorch's default initialisation, unseeded."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if checkpoint:
        import warnings

        from mmdet.apis import init_detector
        with warnings.catch_warnings():
            # The palette and class names it falls back to are only for
            # drawing, which this model is not built for.
            warnings.simplefilter('ignore')
            return init_detector(cfg, checkpoint, device='cpu')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if cfg.model.get('backbone', {}).get('init_cfg'):
        cfg.model.backbone.init_cfg = None  # no ImageNet file needed
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    # init_weights logs every parameter at INFO level: keep it quiet.
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model.eval()
