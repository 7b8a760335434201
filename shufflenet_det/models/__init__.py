from . import backbones, dense_heads, detectors, layers, roi_heads  # noqa: F401
