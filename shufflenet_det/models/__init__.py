from . import backbones, dense_heads, detectors, layers, necks, roi_heads

__all__ = [
    'backbones', 'dense_heads', 'detectors', 'layers', 'necks', 'roi_heads'
]
