"""Deployment: the whole Light-Head R-CNN (or ThunderNet) as one ONNX
graph (standard operators only; PSRoIAlign and NMS included) for ONNX
Runtime and OpenVINO, and inference-time rewrites of the PyTorch model (BatchNorm
folding).

    from shufflenet_det.deploy import export_onnx, ov_compile
    export_onnx(model.eval(), 'lighthead.onnx', shape=(800, 1216))
    session = ov_compile('lighthead.onnx', precision='f32')

``tools/deployment/export_onnx.py`` is the command line. openvino and nncf
stay optional: :mod:`.openvino` imports them only when one of its
functions is called.
"""
from .export import export_onnx, ort_session
from .fuse import count_batchnorm, fold_batchnorm
from .openvino import (OpenVINOSession, check_ir, ov_compile, ov_quantize,
                       runtime_precisions)
from .ops import onnx_nms, ps_roi_align
from .runtime import OpenVINOGraph, OrtGraph
from .wrapper import DeployError, LightHeadRCNNExport

__all__ = [
    'DeployError', 'LightHeadRCNNExport', 'OpenVINOGraph', 'OpenVINOSession',
    'OrtGraph', 'check_ir', 'count_batchnorm', 'export_onnx',
    'fold_batchnorm', 'onnx_nms', 'ort_session', 'ov_compile', 'ov_quantize',
    'ps_roi_align', 'runtime_precisions'
]
