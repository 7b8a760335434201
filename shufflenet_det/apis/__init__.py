"""Using a trained detector from Python: build it from a config and a
checkpoint, run it on images, run and evaluate its ONNX graph.

    from shufflenet_det.apis import build_detector, run_inference
"""
from .detector import build_detector
from .inference import (InferError, ProjectDetInferencer, build_inferencer,
                        collect_images, run_inference)
from .onnxruntime import OnnxRuntimeDetector, OpenVINODetector

__all__ = [
    'InferError', 'OnnxRuntimeDetector', 'OpenVINODetector',
    'ProjectDetInferencer',
    'build_detector', 'build_inferencer', 'collect_images', 'run_inference'
]
