"""COCO evaluation of exported graphs in ONNX Runtime or OpenVINO, beside
PyTorch, on a config's test set (``tools/deployment/eval_onnx.py`` is the command line),
and how far apart their detections are
(:func:`~shufflenet_det.deploy.parity.match_detections`)."""
import os.path as osp
import time

import numpy as np
import torch

from ..deploy.parity import match_detections
from .onnxruntime import OnnxRuntimeDetector, OpenVINODetector

# How int8 detections are matched to fp32's: int8 rounding moves boxes by
# a pixel or two and scores by a few hundredths (docs/int8.md).
INT8_MATCH = dict(iou_thr=0.8, score_tol=0.05)
TOTALS = ('reference', 'other', 'matched')
#: backend -> the detector that runs a graph in it.
BACKENDS = {'onnxruntime': OnnxRuntimeDetector, 'openvino': OpenVINODetector}


def _padded(sample):
    """A sample's predictions as (1, n, 5) dets and (1, n) labels."""
    pred = sample.pred_instances
    dets = np.concatenate([pred.bboxes.numpy(), pred.scores.numpy()[:, None]],
                          1)[None]
    return dets, pred.labels.numpy()[None]


def _add_matches(total, a, b, **kw):
    r = match_detections(*_padded(a), *_padded(b), **kw)
    for k in TOTALS:
        total[k] += r[k]


def evaluate(cfg, detectors, model=None, log=print, reference=0,
             match_cfg=None):
    """Run the test set through each of ``detectors`` (mmengine models,
    e.g. :class:`OnnxRuntimeDetector`) and ``model`` (PyTorch) if given,
    each with its own ``Evaluator`` of the config's ``test_evaluator``.

    mmengine's ``TestLoop`` runs one model; here all of them run on each
    batch, so that their detections are matched image by image. One image
    per batch, in PyTorch too: mmdet pads a batch to its largest image, and
    the proposals of an image then depend on the others' sizes (anchors
    over the padding, clipped to the image).

    Returns:
        tuple: ``(metrics, pytorch_metrics or None, matches)``: a list of
        metrics, one per detector; ``matches[i]`` the
        :func:`~shufflenet_det.deploy.parity.match_detections` totals of
        detector i's detections against PyTorch's (``'pytorch'``) and, for
        detectors whose index is in ``match_cfg`` ({index:
        match_detections keywords}), against detector ``reference``'s
        (``'reference'``).
    """
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner
    match_cfg = match_cfg or {}
    loader_cfg = cfg.test_dataloader.copy()
    loader_cfg.update(batch_size=1)
    loader = Runner.build_dataloader(loader_cfg)
    models = list(detectors) + ([model] if model is not None else [])
    evaluators = [Evaluator(cfg.test_evaluator) for _ in models]
    for e in evaluators:
        e.dataset_meta = loader.dataset.metainfo
    matches = [dict(pytorch=dict.fromkeys(TOTALS, 0),
                    reference=dict.fromkeys(TOTALS, 0)) for _ in detectors]
    done, start = 0, time.perf_counter()
    for batch in loader:
        with torch.no_grad():
            outputs = [m.test_step(batch) for m in models]
        for e, samples in zip(evaluators, outputs):
            e.process(data_samples=samples, data_batch=batch)
        for i, kw in match_cfg.items():
            for a, b in zip(outputs[reference], outputs[i]):
                _add_matches(matches[i]['reference'], a, b, **kw)
        if model is not None:
            for samples, match in zip(outputs, matches):
                for a, b in zip(outputs[-1], samples):
                    _add_matches(match['pytorch'], a, b)
        done += len(batch['inputs'])
        log(f'\r{done}/{len(loader.dataset)} images, '
            f'{time.perf_counter() - start:.0f} s', end='')
    log('')
    size = len(loader.dataset)
    results = [e.evaluate(size) for e in evaluators]
    pt_metrics = results.pop() if model is not None else None
    return results, pt_metrics, matches


def open_graph(cfg, path, backend='onnxruntime', threads=None, fill=None,
               precision='f32'):
    """The graph at ``path`` checked against ``cfg`` and opened as a
    detector of ``backend`` (:data:`BACKENDS`): an .onnx (fp32 or int8) in
    either, an int8 IR (.xml of :func:`~shufflenet_det.deploy.openvino.
    ov_quantize`) in OpenVINO. ``precision``: OpenVINO's.

    Returns:
        tuple: the detector and the graph's int8 parts (None: fp32).
    """
    from ..deploy.export import check_graph
    from ..deploy.quantize import int8_parts
    from ..deploy.wrapper import DeployError
    if backend not in BACKENDS:
        raise DeployError(f'backend {backend!r}: choose from '
                          f'{", ".join(BACKENDS)}')
    if str(path).endswith('.xml'):
        from ..deploy.openvino import check_ir, ir_metadata
        from ..deploy.quantize import METADATA_KEY
        if backend != 'openvino':
            raise DeployError(f'{path} is an OpenVINO IR: run it with '
                              '--backend openvino')
        check_ir(cfg, path)
        parts = ir_metadata(path, METADATA_KEY)
    else:
        check_graph(cfg, path)
        parts = int8_parts(path)
    kwargs = dict(precision=precision) if backend == 'openvino' else {}
    return BACKENDS[backend](path, threads, fill, **kwargs), parts


def evaluate_graphs(cfg, paths, checkpoint=None, threads=None, log=print,
                    backend='onnxruntime', precision='f32'):
    """Evaluate the graphs at ``paths`` (fp32 or int8; each checked against
    ``cfg``) in ``backend`` (:func:`open_graph`), and ``checkpoint`` in
    PyTorch if given, on ``cfg``'s test set; int8 graphs are matched to
    the first fp32 graph as well (:data:`INT8_MATCH`).

    Returns:
        dict: ``paths``, ``kinds`` ('fp32' or 'int8'), ``parts`` (each
        graph's int8 parts or None), ``reference`` (the fp32 graph's index
        or None), ``match_cfg``, ``backend``, ``precisions`` (OpenVINO's,
        read back from each compiled graph; None in ONNX Runtime),
        ``metrics``, ``pytorch_metrics``, ``matches`` (:func:`evaluate`).
    """
    from mmengine.registry import init_default_scope

    from ..deploy.inputs import config_fill
    from .detector import build_detector
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    fill = config_fill(cfg)
    opened = [open_graph(cfg, path, backend, threads, fill, precision)
              for path in paths]
    detectors = [d for d, _ in opened]
    parts = [p for _, p in opened]
    kinds = ['fp32' if p is None else 'int8' for p in parts]
    reference = kinds.index('fp32') if 'fp32' in kinds else None
    match_cfg = {i: INT8_MATCH for i, k in enumerate(kinds)
                 if k == 'int8' and reference is not None}
    model = build_detector(cfg, checkpoint) if checkpoint else None
    try:
        metrics, pt_metrics, matches = evaluate(
            cfg, detectors, model, log=log, reference=reference or 0,
            match_cfg=match_cfg)
    except Exception as e:  # noqa: BLE001
        if 'Got invalid dimensions' in str(e) or 'does not fit' in str(e):
            raise ValueError(
                f'{" or ".join(paths)} takes one input shape or batch size, '
                'the test images do not fit it: export it with --dynamic'
            ) from e
        raise
    return dict(paths=list(paths), kinds=kinds, parts=parts,
                reference=reference, match_cfg=match_cfg, backend=backend,
                precisions=[getattr(d, 'precision', None)
                            for d in detectors],
                metrics=metrics, pytorch_metrics=pt_metrics, matches=matches)


def summary(metrics):
    """COCO bbox mAP and its breakdown, in points, on one line."""
    keys = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
    values = [100 * metrics.get(f'coco/bbox_{k}', float('nan')) for k in keys]
    return ('{:.1f} (AP50 {:.1f}, AP75 {:.1f}; small {:.1f}, medium {:.1f}, '
            'large {:.1f})'.format(*values))


def report_lines(result):
    """The lines that say :func:`evaluate_graphs`' ``result``: each graph's
    mAP (and PyTorch's), then how far apart they are."""
    names = [osp.basename(p) for p in result['paths']]
    kinds, metrics = result['kinds'], result['metrics']
    pt_metrics, reference = result['pytorch_metrics'], result['reference']
    runtime = BACKENDS[result.get('backend', 'onnxruntime')].graph_type.runtime
    # OpenVINO's inference precision, read back, after its name.
    precisions = result.get('precisions') or [None] * len(names)
    labels = [f'{runtime}{" " + p if p else ""} ({k}, {n})'
              for p, k, n in zip(precisions, kinds, names)]
    width = max(len(x) for x in labels + ['PyTorch'])
    lines = []
    for label, m, p in zip(labels, metrics, result['parts']):
        lines.append(f'{label + ":":<{width + 1}} COCO bbox mAP {summary(m)}'
                     + (f'; int8: {", ".join(p)}' if p else ''))
    if pt_metrics is not None:
        lines.append(f'{"PyTorch:":<{width + 1}} COCO bbox mAP '
                     f'{summary(pt_metrics)}')

    def diff(a, b):
        return 100 * abs(a['coco/bbox_mAP'] - b['coco/bbox_mAP'])

    for i, (name, match) in enumerate(zip(names, result['matches'])):
        if pt_metrics is not None:
            m = match['pytorch']
            lines.append(
                f'{name} against PyTorch: mAP difference '
                f'{diff(metrics[i], pt_metrics):.2f} points; '
                f'{m["matched"]} of {m["reference"]} PyTorch detections '
                f'matched in {runtime} (IoU >= 0.99, same label, score '
                f'within 1e-3), {runtime} {m["other"]}')
        if i in result['match_cfg']:
            m, kw = match['reference'], result['match_cfg'][i]
            lines.append(
                f'{name} against {names[reference]}: mAP difference '
                f'{diff(metrics[i], metrics[reference]):.2f} points; '
                f'{m["matched"]} of {m["reference"]} fp32 detections '
                f'matched in int8 (IoU >= {kw["iou_thr"]}, same label, '
                f'score within {kw["score_tol"]}), int8 {m["other"]}')
    return lines
