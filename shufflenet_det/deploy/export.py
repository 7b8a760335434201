"""Export of a Light-Head R-CNN or a ThunderNet to ONNX, and ONNX Runtime
sessions for it.

The exporter is torch's TorchScript-based one (``torch.onnx.export(...,
dynamo=False)``): it traces :class:`~.wrapper.LightHeadRCNNExport` once and
maps each operator by its ONNX symbolic, NMS by the one of
:func:`~.ops.onnx_nms`. The dynamo exporter (torch's default) would need
onnxscript and a translation of the NMS for ``torch.export``, whose
data-dependent output size it handles as an unbacked symbol; tracing handles
a graph with data-dependent sizes plainly, and the graph it writes is
checked against PyTorch by the tests.

The graph carries what it computes with in its metadata (``metadata_props``,
key :data:`METADATA_KEY`, JSON: :meth:`LightHeadRCNNExport.metadata`): the
``test_cfg``, the normalisation, channel order and padding, the classes,
the detector's class.
:func:`check_graph` compares them with a config: the tools that run a graph
refuse a config that disagrees with it (the graph computes with the values
it was exported with, whatever the config says).
"""
import copy
import inspect
import json
import math
import os
import os.path as osp
import warnings

import numpy as np
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from .fuse import fold_batchnorm
from .ops import OPSET
from .wrapper import METADATA_FORMAT, DeployError, LightHeadRCNNExport

INPUT_NAMES = ['input', 'img_shape']
OUTPUT_NAMES = ['dets', 'labels']
DEBUG_OUTPUT_NAMES = ['proposals', 'proposal_valid', 'cls_score', 'bbox_pred']
METADATA_KEY = 'shufflenet_det.graph'
# The config keys of the metadata's fields, for the tools' messages.
CONFIG_KEYS = dict(detector='model.type', test_cfg='model.test_cfg',
                   preprocess='model.data_preprocessor',
                   pool_mode='model.roi_head.bbox_roi_extractor.pool_mode',
                   classes='test_dataloader.dataset.metainfo.classes')


def check_shape(shape):
    h, w = shape
    if h <= 0 or w <= 0:
        raise DeployError(f'--shape {h} {w}: height and width must be '
                          'positive, e.g. 800 1216')


def export_onnx(model, out, shape=(800, 1216), batch_size=1, dynamic=False,
                debug=False, opset=OPSET, classes=None):
    """Write ``model`` (a ``LightHeadRCNN`` or a ``ThunderNet`` in eval
    mode; the test_cfg's NMS plain, not soft) to ``out`` as one
    ONNX graph with inputs ``input`` (N, 3, H, W), ``img_shape`` (N or 1,
    2; optional) and outputs ``dets``, ``labels`` (and with ``debug``, the
    intermediate results of :class:`LightHeadRCNNExport`), and its
    metadata (:data:`METADATA_KEY`); ``classes``: the class names to write
    there (default: the model's ``dataset_meta``, if any).

    ``shape`` (H, W) and ``batch_size`` are those of the traced input; with
    ``dynamic`` the graph takes any batch size and any H, W. Returns the
    wrapper module that was exported."""
    # ThunderNet has no thin_map (its CEM has no BatchNorm; every other BN
    # follows a conv, which torch's exporter folds).
    if isinstance(getattr(getattr(model, 'thin_map', None), 'norm', None),
                  _BatchNorm):
        # torch's exporter folds a BN into the conv before it, not the BN of
        # the thin map's sum (the demo's): fold it in a copy.
        model = copy.deepcopy(model)
        fold_batchnorm(model)
    wrapper = LightHeadRCNNExport(model, debug=debug).eval()
    check_shape(shape)
    if batch_size < 1:
        raise DeployError(f'--batch-size must be >= 1, got {batch_size}')
    if classes is None:
        classes = (getattr(model, 'dataset_meta', None) or {}).get('classes')
    metadata = wrapper.metadata(classes)
    gen = torch.Generator().manual_seed(0)
    dummy = torch.randint(0, 256, (batch_size, 3, *shape),
                          generator=gen).float()
    sizes = torch.tensor([list(shape)] * batch_size)
    names = OUTPUT_NAMES + (DEBUG_OUTPUT_NAMES if debug else [])
    # img_shape: one row per image, or one for all.
    dynamic_axes = {'img_shape': {0: 'img_shape_rows'}}
    if dynamic:
        dynamic_axes['input'] = {0: 'batch', 2: 'height', 3: 'width'}
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
        # The padding's Slice (reversed pads): not folded, and need not be.
        warnings.filterwarnings('ignore', message='Constant folding - Only')
        torch.onnx.export(
            wrapper, (dummy, sizes), out, dynamo=False, opset_version=opset,
            input_names=INPUT_NAMES, output_names=names,
            dynamic_axes=dynamic_axes, do_constant_folding=True)
    _finish_graph(out, metadata)
    return wrapper


def _finish_graph(path, metadata):
    """``img_shape``'s default (an initializer of the graph input's name:
    (1, 2) zeros, all of ``input``) and the metadata, in the file."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(path)
    model.graph.initializer.append(
        numpy_helper.from_array(np.zeros((1, 2), np.int64), 'img_shape'))
    write_metadata(model, metadata)
    onnx.save(model, path)


def write_metadata(model, metadata, key=METADATA_KEY):
    """Set ``key`` of an ``onnx.ModelProto``'s ``metadata_props`` to
    ``metadata`` as JSON (replacing an entry of that key)."""
    for entry in [e for e in model.metadata_props if e.key == key]:
        model.metadata_props.remove(entry)
    entry = model.metadata_props.add()
    entry.key, entry.value = key, json.dumps(metadata)


def read_metadata(path_or_model, key=METADATA_KEY):
    """The graph's metadata (:meth:`LightHeadRCNNExport.metadata`), or None
    when it has none: JSON data, read with ``json.loads`` only."""
    import onnx
    model = (onnx.load(path_or_model, load_external_data=False)
             if isinstance(path_or_model, str) else path_or_model)
    for entry in model.metadata_props:
        if entry.key == key:
            return json.loads(entry.value)
    return None


def ort_session(path, threads=None):
    """An ONNX Runtime CPU session for ``path``, all graph optimisations on;
    ``threads``: intra-op threads (default: ONNX Runtime's choice, one per
    physical core). Errors only in its log: ONNX Runtime warns at every
    load that ``img_shape``, an input with a default value (an initializer
    of its name), is not a constant, which is what it is for."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(path, opts,
                                providers=['CPUExecutionProvider'])


def config_classes(cfg):
    """The class names of ``cfg``'s test set: its ``metainfo`` or its data
    set class's ``METAINFO``; None if neither names them."""
    ds = cfg.get('test_dataloader', {}).get('dataset', {})
    while 'dataset' in ds:  # wrappers (RepeatDataset, ...)
        ds = ds['dataset']
    classes = (ds.get('metainfo') or {}).get('classes')
    if classes is None and ds.get('type'):
        try:
            from mmdet.registry import DATASETS
            kind = ds['type']
            kind = DATASETS.get(kind) if isinstance(kind, str) else kind
            classes = (getattr(kind, 'METAINFO', None) or {}).get('classes')
        except (ImportError, KeyError):
            classes = None
    return [str(c) for c in classes] if classes else None


def _pool_mode(cfg):
    ext = cfg.model.get('roi_head', {}).get('bbox_roi_extractor', {})
    if 'pool_mode' in ext:
        return ext['pool_mode']
    try:  # the extractor's default
        from mmdet.registry import MODELS
        kind = ext.get('type')
        kind = MODELS.get(kind) if isinstance(kind, str) else kind
        return inspect.signature(kind).parameters['pool_mode'].default
    except (ImportError, KeyError, TypeError, ValueError):
        return None


def config_metadata(cfg):
    """The fields of the graph's metadata that a config determines, from
    ``cfg`` (after its ``--cfg-options``): ``detector`` (the model's type),
    ``test_cfg``, ``preprocess``
    (without the graph's own input channel order), ``num_classes``,
    ``classes``, ``pool_mode`` (None where the config does not say)."""
    mp = cfg.model.get('data_preprocessor') or {}
    mean, std = mp.get('mean'), mp.get('std')
    if mean is None:  # mmengine: no normalisation
        mean, std = [0.0] * 3, [1.0] * 3
    detector = cfg.model.get('type')
    if isinstance(detector, str):
        detector = detector.split('.')[-1]  # 'mmdet.X' -> 'X'
    elif detector is not None:  # a class, in a pure-Python config
        detector = detector.__name__
    return dict(
        detector=detector,
        test_cfg=json.loads(json.dumps(cfg.model.get('test_cfg'))),
        preprocess=dict(
            bgr_to_rgb=bool(mp.get('bgr_to_rgb', False)
                            or mp.get('rgb_to_bgr', False)),
            mean=[float(v) for v in mean], std=[float(v) for v in std],
            pad_size_divisor=int(mp.get('pad_size_divisor', 1) or 1),
            pad_value=float(mp.get('pad_value', 0))),
        num_classes=cfg.model.roi_head.bbox_head.num_classes,
        classes=config_classes(cfg),
        pool_mode=_pool_mode(cfg))


def _same(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        # float32 in the graph against the config's decimals
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return a == b


def _differences(graph, config, key):
    """(key, graph's value, config's value) of each leaf that differs."""
    if isinstance(graph, dict) and isinstance(config, dict):
        for k in sorted(set(graph) | set(config)):
            yield from _differences(graph.get(k, '(not set)'),
                                    config.get(k, '(not set)'), f'{key}.{k}')
    elif (isinstance(graph, list) and isinstance(config, list)
          and len(graph) == len(config)):
        for i, (a, b) in enumerate(zip(graph, config)):
            yield from _differences(a, b, f'{key}[{i}]')
    elif not _same(graph, config):
        yield key, graph, config


def check_graph(cfg, path):
    """Stop with what to do when the graph at ``path`` (fp32 or int8) is
    not an export of ``cfg``'s detector as ``cfg`` has it: the interface
    (``input``, ``img_shape`` -> ``dets``, ``labels``), and the graph's
    metadata against ``cfg`` (:func:`config_metadata`): the detector's
    class, number and names of the classes, ``test_cfg``, the data
    preprocessor's normalisation,
    channel order and padding, the PSRoI pooling. Returns the metadata."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    graph = model.graph
    names = ([i.name for i in graph.input], [o.name for o in graph.output])
    again = ('export it again with tools/deployment/export_onnx.py CONFIG '
             'CHECKPOINT --dynamic')
    if 'input' not in names[0] or names[1][:2] != OUTPUT_NAMES:
        raise DeployError(
            f'{path}: inputs {names[0]}, outputs {names[1]}; expected input '
            '"input" and outputs "dets", "labels": export the graph with '
            'tools/deployment/export_onnx.py')
    meta = read_metadata(model)
    if 'img_shape' not in names[0] or meta is None:
        raise DeployError(
            f'{path} has no img_shape input or no {METADATA_KEY} metadata '
            '(the test_cfg, preprocessing and classes it was exported with): '
            f'it comes from an older export; {again}')
    if meta.get('format') != METADATA_FORMAT:
        raise DeployError(
            f'{path}: metadata format {meta.get("format")!r}, this version '
            f'reads {METADATA_FORMAT}: {again}')
    ours = config_metadata(cfg)
    if meta['num_classes'] != ours['num_classes']:
        raise DeployError(
            f'{path} was exported from a detector of {meta["num_classes"]} '
            f'classes, the config has {ours["num_classes"]}: export it from '
            'this config (tools/deployment/export_onnx.py CONFIG CHECKPOINT '
            '--dynamic), or pass the config it was exported from')
    diffs = []
    for field in ('detector', 'test_cfg', 'preprocess', 'pool_mode',
                  'classes'):
        theirs, mine = meta.get(field), ours[field]
        if field == 'preprocess':
            theirs = {k: v for k, v in theirs.items()
                      if k != 'input_channel_order'}
        if mine is None or (field in ('classes', 'detector')
                            and theirs is None):
            # The config does not say, or the graph does not know (the
            # detector: graphs exported before ThunderNet, all Light-Head).
            continue
        diffs += _differences(theirs, mine, CONFIG_KEYS[field])
    if diffs:
        key, theirs, mine = diffs[0]
        more = (f' (and {len(diffs) - 1} more: '
                f'{", ".join(d[0] for d in diffs[1:])})'
                if len(diffs) > 1 else '')
        raise DeployError(
            f'{path} was exported with {key} = {json.dumps(theirs)}, the '
            f'config has {json.dumps(mine)}{more}: the graph computes with '
            'the values it was exported with (--cfg-options change only the '
            'config). Export the graph again from this config '
            '(tools/deployment/export_onnx.py CONFIG CHECKPOINT --dynamic, '
            'with the same --cfg-options), or pass the config it was '
            'exported from')
    return meta


def verify_graph(path, model, shape, batch_size, max_per_img, seed=1):
    """ONNX Runtime against mmdet's ``predict`` in PyTorch on
    ``batch_size`` random images of ``shape`` (drawn with ``seed``): the
    detections matched (:func:`~.parity.match_detections`: IoU >= 0.99,
    same label, score within 1e-3). Returns its report."""
    import torch

    from ..utils.inputs import mmdet_batch
    from .parity import match_detections
    gen = torch.Generator().manual_seed(seed)
    bgr = [torch.randint(0, 256, (3, *shape), generator=gen,
                         dtype=torch.uint8) for _ in range(batch_size)]
    rgb = torch.stack([im.flip(0) for im in bgr]).float()
    sizes = np.array([list(shape)] * batch_size, np.int64)
    with torch.no_grad():
        results = model.test_step(mmdet_batch(bgr))
    k = max_per_img
    ref = np.zeros((batch_size, k, 5), np.float32)
    ref_labels = np.full((batch_size, k), -1, np.int64)
    for i, res in enumerate(results):
        pred = res.pred_instances
        ref[i, :len(pred), :4] = pred.bboxes.numpy()
        ref[i, :len(pred), 4] = pred.scores.numpy()
        ref_labels[i, :len(pred)] = pred.labels.numpy()
    dets, labels = ort_session(path).run(
        None, {'input': rgb.numpy(), 'img_shape': sizes})[:2]
    return match_detections(ref, ref_labels, dets, labels)
