"""COCO evaluation of exported Light-Head R-CNN graphs in ONNX Runtime, on
the config's test set: one graph, or several (fp32 and the int8 graph of
``quantize_onnx.py``) on the same images in the same run; with
``--checkpoint``, PyTorch (mmdet's ``predict``) too, and how far apart they
are.

    python tools/deployment/export_onnx.py configs/demo/lighthead_v2star_shapes.py \\
        $(cat work_dirs/demo/last_checkpoint) --out demo.onnx --dynamic
    python tools/deployment/quantize_onnx.py configs/demo/lighthead_v2star_shapes.py \\
        demo.onnx --out demo_int8.onnx
    python tools/deployment/eval_onnx.py configs/demo/lighthead_v2star_shapes.py \\
        demo.onnx demo_int8.onnx --checkpoint $(cat work_dirs/demo/last_checkpoint)

Each graph's detections are matched to PyTorch's (IoU >= 0.99, same
label, score within 1e-3: the same computation in another runtime); an
int8 graph's are also matched to those of the first fp32 graph given, by
a criterion that allows for int8's rounding (IoU >= 0.8, same label, score
within 0.05).

Each image goes through the config's test pipeline (resize), is converted
to RGB float32 and run alone with its size as ``img_shape``: the graph pads
it to multiples of 32 and clips its boxes to it, as mmdet does (a graph
exported without ``--dynamic`` gets the image padded to its input shape,
which must hold it); PyTorch too gets one image per batch. The graph's
boxes are scaled back to the original image, as mmdet's ``predict`` does.

The graph computes with the ``test_cfg``, preprocessing and classes it was
exported with (its metadata); a config, ``--cfg-options`` included, that
disagrees with a graph is refused with the field that differs: export the
graph again from that config.
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.config import DictAction  # noqa: E402

from shufflenet_det.utils.cli import user_errors  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='the config the graph was exported from')
    p.add_argument('onnx', nargs='+',
                   help='the exported graph(s) (.onnx), fp32 or int8')
    p.add_argument('--checkpoint',
                   help='also evaluate these weights in PyTorch on the same '
                   'images, and compare')
    p.add_argument('--threads', type=int, default=None,
                   help='ONNX Runtime intra-op threads')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    p.add_argument('--debug', action='store_true',
                   help='show the full traceback of an error')
    return p.parse_args(argv)


# How int8 detections are matched to fp32's: int8 rounding moves boxes by
# a pixel or two and scores by a few hundredths (docs/int8.md).
INT8_MATCH = dict(iou_thr=0.8, score_tol=0.05)


def evaluate(cfg, sessions, model=None, log=print, reference=0,
             match_cfg=None):
    """Run the test set through each ONNX Runtime session of ``sessions``
    (and ``model`` in PyTorch if given). Returns ``(onnx_metrics,
    pytorch_metrics or None, matches)``: a list of metrics, one per session;
    ``matches[i]`` the
    :func:`~shufflenet_det.deploy.parity.match_detections` totals of
    session i's detections against PyTorch's (``'pytorch'``) and, for
    sessions whose index is in ``match_cfg`` ({index: match_detections
    keywords}), against session ``reference``'s (``'reference'``)."""
    import torch
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner

    from shufflenet_det.deploy.parity import match_detections
    from shufflenet_det.deploy.inputs import config_fill, graph_feeds
    match_cfg = match_cfg or {}
    fill = config_fill(cfg)
    # A graph with a fixed input shape gets images padded to it.
    shapes = [_fixed_shape(s) for s in sessions]
    # One image per batch, in PyTorch too: mmdet pads a batch to its
    # largest image, and the proposals of an image then depend on the
    # others' sizes (anchors over the padding, clipped to the image).
    loader_cfg = cfg.test_dataloader.copy()
    loader_cfg.update(batch_size=1)
    loader = Runner.build_dataloader(loader_cfg)
    evaluators = [Evaluator(cfg.test_evaluator)
                  for _ in range(len(sessions) + (model is not None))]
    for e in evaluators:
        e.dataset_meta = loader.dataset.metainfo
    totals = ('reference', 'other', 'matched')
    matches = [dict(pytorch=dict.fromkeys(totals, 0),
                    reference=dict.fromkeys(totals, 0)) for _ in sessions]

    def add(total, a, b, **kw):
        r = match_detections(*_padded(a), *_padded(b), **kw)
        for k in totals:
            total[k] += r[k]

    done, start = 0, time.perf_counter()
    for batch in loader:
        ort_samples = [[] for _ in sessions]
        for img, sample in zip(batch['inputs'], batch['data_samples']):
            for session, shape, samples in zip(sessions, shapes,
                                               ort_samples):
                feeds = graph_feeds([img], fill, shape, divisor=1)
                dets, labels = session.run(None, feeds)[:2]
                samples.append(_to_sample(dets[0], labels[0], sample))
        for e, samples in zip(evaluators, ort_samples):
            e.process(data_samples=samples, data_batch=batch)
        for i, kw in match_cfg.items():
            for a, b in zip(ort_samples[reference], ort_samples[i]):
                add(matches[i]['reference'], a, b, **kw)
        if model is not None:
            with torch.no_grad():
                pt_samples = model.test_step(batch)
            evaluators[-1].process(data_samples=pt_samples, data_batch=batch)
            for samples, match in zip(ort_samples, matches):
                for a, b in zip(pt_samples, samples):
                    add(match['pytorch'], a, b)
        done += len(batch['inputs'])
        log(f'\r{done}/{len(loader.dataset)} images, '
            f'{time.perf_counter() - start:.0f} s', end='')
    log('')
    size = len(loader.dataset)
    results = [e.evaluate(size) for e in evaluators]
    pt_metrics = results.pop() if model is not None else None
    return results, pt_metrics, matches


def _fixed_shape(session):
    """The (H, W) of a session's input if fixed, else None."""
    h, w = session.get_inputs()[0].shape[2:]
    return (h, w) if isinstance(h, int) and isinstance(w, int) else None


def _to_sample(dets, labels, sample):
    """One image's padded graph outputs as mmdet's prediction: boxes (the
    graph clips them to the image) scaled back to the original image, as
    mmdet's ``predict`` does."""
    import numpy as np
    import torch
    from mmengine.structures import InstanceData
    keep = dets[:, 4] > 0
    boxes = dets[keep, :4].copy()
    sx, sy = sample.scale_factor
    boxes /= np.float32([sx, sy, sx, sy])
    out = sample.clone()
    out.pred_instances = InstanceData(
        bboxes=torch.from_numpy(boxes),
        scores=torch.from_numpy(dets[keep, 4].copy()),
        labels=torch.from_numpy(labels[keep].copy()))
    return out


def _padded(sample):
    """A sample's predictions as (1, n, 5) dets and (1, n) labels."""
    import numpy as np
    pred = sample.pred_instances
    dets = np.concatenate([pred.bboxes.numpy(), pred.scores.numpy()[:, None]],
                          1)[None]
    return dets, pred.labels.numpy()[None]


def summary(metrics):
    keys = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
    values = [100 * metrics.get(f'coco/bbox_{k}', float('nan')) for k in keys]
    return ('{:.1f} (AP50 {:.1f}, AP75 {:.1f}; small {:.1f}, medium {:.1f}, '
            'large {:.1f})'.format(*values))


def main(argv=None):
    args = parse_args(argv)
    with user_errors(args.debug):
        from mmengine.config import Config
        from mmengine.registry import init_default_scope

        import shufflenet_det  # noqa: F401
        from shufflenet_det.deploy import ort_session
        from shufflenet_det.deploy.export import check_graph
        from shufflenet_det.deploy.quantize import int8_parts
        from shufflenet_det.apis.detector import build_detector
        for path in (args.config, *args.onnx, args.checkpoint):
            if path and not osp.isfile(path):
                raise FileNotFoundError(f'{path} not found')
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        for path in args.onnx:
            check_graph(cfg, path)
        parts = [int8_parts(path) for path in args.onnx]
        kinds = ['fp32' if p is None else 'int8' for p in parts]
        sessions = [ort_session(path, args.threads) for path in args.onnx]
        # int8 graphs are matched to the first fp32 one as well.
        reference = kinds.index('fp32') if 'fp32' in kinds else None
        match_cfg = {i: INT8_MATCH for i, k in enumerate(kinds)
                     if k == 'int8' and reference is not None}
        model = None
        if args.checkpoint:
            model = build_detector(cfg, args.checkpoint)
        try:
            ort_metrics, pt_metrics, matches = evaluate(
                cfg, sessions, model, reference=reference or 0,
                match_cfg=match_cfg)
        except Exception as e:  # noqa: BLE001
            if 'Got invalid dimensions' in str(e) or 'does not fit' in str(
                    e):
                raise ValueError(
                    f'{" or ".join(args.onnx)} takes one input shape or '
                    'batch size, the test images do not fit it: export it '
                    'with --dynamic') from e
            raise
    names = [osp.basename(p) for p in args.onnx]
    labels = [f'ONNX Runtime ({k}, {n})' for k, n in zip(kinds, names)]
    width = max(len(x) for x in labels + ['PyTorch'])
    for label, metrics, p in zip(labels, ort_metrics, parts):
        print(f'{label + ":":<{width + 1}} COCO bbox mAP {summary(metrics)}'
              + (f'; int8: {", ".join(p)}' if p else ''))
    if pt_metrics is not None:
        print(f'{"PyTorch:":<{width + 1}} COCO bbox mAP {summary(pt_metrics)}')

    def diff(a, b):
        return 100 * abs(a['coco/bbox_mAP'] - b['coco/bbox_mAP'])

    for i, (name, kind, match) in enumerate(zip(names, kinds, matches)):
        if pt_metrics is not None:
            m = match['pytorch']
            print(f'{name} against PyTorch: mAP difference '
                  f'{diff(ort_metrics[i], pt_metrics):.2f} points; '
                  f'{m["matched"]} of {m["reference"]} PyTorch detections '
                  f'matched in ONNX Runtime (IoU >= 0.99, same label, score '
                  f'within 1e-3), ONNX Runtime {m["other"]}')
        if i in match_cfg:
            m, kw = match['reference'], match_cfg[i]
            print(f'{name} against {names[reference]}: mAP difference '
                  f'{diff(ort_metrics[i], ort_metrics[reference]):.2f} '
                  f'points; {m["matched"]} of {m["reference"]} fp32 '
                  f'detections matched in int8 (IoU >= {kw["iou_thr"]}, '
                  f'same label, score within {kw["score_tol"]}), int8 '
                  f'{m["other"]}')
    return ort_metrics, pt_metrics, matches


if __name__ == '__main__':
    main()
