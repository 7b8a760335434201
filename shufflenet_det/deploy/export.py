"""Export of a Light-Head R-CNN to ONNX, and ONNX Runtime sessions for it.

The exporter is torch's TorchScript-based one (``torch.onnx.export(...,
dynamo=False)``): it traces :class:`~.wrapper.LightHeadRCNNExport` once and
maps each operator by its ONNX symbolic, NMS by the one of
:func:`~.ops.onnx_nms`. The dynamo exporter (torch's default) would need
onnxscript and a translation of the NMS for ``torch.export``, whose
data-dependent output size it handles as an unbacked symbol; tracing handles
a graph with data-dependent sizes plainly, and the graph it writes is
checked against PyTorch by the tests.
"""
import os
import os.path as osp
import warnings

import torch

from .ops import OPSET
from .wrapper import DeployError, LightHeadRCNNExport

INPUT_NAMES = ['input']
OUTPUT_NAMES = ['dets', 'labels']
DEBUG_OUTPUT_NAMES = ['proposals', 'proposal_valid', 'cls_score', 'bbox_pred']


def check_shape(shape, divisor=32):
    h, w = shape
    if h <= 0 or w <= 0 or h % divisor or w % divisor:
        raise DeployError(
            f'--shape {h} {w}: height and width must be positive multiples '
            f'of {divisor} (the backbone\'s stride), e.g. 800 1216')


def export_onnx(model, out, shape=(800, 1216), batch_size=1, dynamic=False,
                debug=False, opset=OPSET):
    """Write ``model`` (a ``LightHeadRCNN`` in eval mode) to ``out`` as one
    ONNX graph with input ``input`` (N, 3, H, W) and outputs ``dets``,
    ``labels`` (and with ``debug``, the intermediate results of
    :class:`LightHeadRCNNExport`).

    ``shape`` (H, W) and ``batch_size`` are those of the traced input; with
    ``dynamic`` the graph takes any batch size and any H, W (multiples of
    32). Returns the wrapper module that was exported."""
    wrapper = LightHeadRCNNExport(model, debug=debug).eval()
    check_shape(shape, wrapper.size_divisor)
    if batch_size < 1:
        raise DeployError(f'--batch-size must be >= 1, got {batch_size}')
    gen = torch.Generator().manual_seed(0)
    dummy = torch.randint(0, 256, (batch_size, 3, *shape),
                          generator=gen).float()
    names = OUTPUT_NAMES + (DEBUG_OUTPUT_NAMES if debug else [])
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
        dynamic_axes.update({n: {0: 'batch'} for n in names})
        # The R-CNN's raw outputs have a row per proposal slot.
        dynamic_axes.update({n: {0: 'rois'} for n in names
                             if n in ('cls_score', 'bbox_pred')})
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer's warnings about Python values in the graph concern
        # constants (strides, thresholds, the number of proposals).
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', category=DeprecationWarning)
        warnings.filterwarnings('ignore', message='.*legacy TorchScript.*')
        torch.onnx.export(
            wrapper, (dummy, ), out, dynamo=False, opset_version=opset,
            input_names=INPUT_NAMES, output_names=names,
            dynamic_axes=dynamic_axes, do_constant_folding=True)
    return wrapper


def ort_session(path, threads=None):
    """An ONNX Runtime CPU session for ``path``, all graph optimisations on;
    ``threads``: intra-op threads (default: ONNX Runtime's choice, one per
    physical core)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(path, opts,
                                providers=['CPUExecutionProvider'])


def check_graph(cfg, path):
    """Stop with what to do when the graph at ``path`` is not an export of
    ``cfg``'s detector: the ``input`` -> ``dets``, ``labels`` interface, and
    the R-CNN's class count (the rows of its class fc's weights, fp32 or
    int8) against ``cfg``'s ``num_classes``."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    graph = model.graph
    names = ([i.name for i in graph.input], [o.name for o in graph.output])
    if 'input' not in names[0] or names[1][:2] != OUTPUT_NAMES:
        raise DeployError(
            f'{path}: inputs {names[0]}, outputs {names[1]}; expected input '
            '"input" and outputs "dets", "labels": export the graph with '
            'tools/deployment/export_onnx.py')
    inits = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    fc = next((n for n in graph.node
               if n.name.startswith('/bbox_head/fc_cls/')), None)
    if fc is None:
        return
    weight = fc.input[1]
    if weight in producer and producer[weight].op_type == 'DequantizeLinear':
        weight = producer[weight].input[0]  # int8 weights
    if weight not in inits:
        return
    rows = inits[weight].dims[0] if fc.op_type == 'Gemm' else None
    num_classes = cfg.model.roi_head.bbox_head.num_classes
    if rows is not None and rows != num_classes + 1:
        raise DeployError(
            f'{path} was exported from a detector of {rows - 1} classes, '
            f'the config has {num_classes}: export it from this config '
            '(tools/deployment/export_onnx.py CONFIG CHECKPOINT --dynamic), '
            'or pass the config it was exported from')
