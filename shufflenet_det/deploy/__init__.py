"""Deployment: the whole Light-Head R-CNN as one ONNX graph (standard
operators only; PSRoIAlign and NMS included) for ONNX Runtime, and
inference-time rewrites of the PyTorch model (BatchNorm folding).

    from shufflenet_det.deploy import export_onnx
    export_onnx(model.eval(), 'lighthead.onnx', shape=(800, 1216))

``tools/deployment/export_onnx.py`` is the command line.
"""
from .export import export_onnx, ort_session
from .fuse import count_batchnorm, fold_batchnorm
from .ops import onnx_nms, ps_roi_align
from .runtime import OrtGraph
from .wrapper import DeployError, LightHeadRCNNExport

__all__ = [
    'DeployError', 'LightHeadRCNNExport', 'count_batchnorm', 'export_onnx',
    'OrtGraph', 'fold_batchnorm', 'onnx_nms', 'ort_session',
    'ps_roi_align'
]
