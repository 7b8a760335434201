from . import backbones, detectors, layers, roi_heads  # noqa: F401
