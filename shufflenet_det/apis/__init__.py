"""Using a trained detector from Python: build it from a config and a
checkpoint, run it on images, run its ONNX graph.

    from shufflenet_det.apis import build_detector
"""
from .detector import build_detector

__all__ = ['build_detector']
