"""COCO evaluation of an exported Light-Head R-CNN in ONNX Runtime, on the
config's test set; with ``--checkpoint``, PyTorch (mmdet's ``predict``)
on the same images in the same run, and how far apart the two are.

    python tools/deployment/export_onnx.py configs/demo/lighthead_v2star_shapes.py \\
        $(cat work_dirs/demo/last_checkpoint) --out demo.onnx --dynamic
    python tools/deployment/eval_onnx.py configs/demo/lighthead_v2star_shapes.py \\
        demo.onnx --checkpoint $(cat work_dirs/demo/last_checkpoint)

Each image goes through the config's test pipeline (resize), is padded to
multiples of 32 with the mean colour, converted to RGB float32 and run
alone (the graph must be exported with ``--dynamic`` unless every test
image has the graph's shape); PyTorch too gets one image per batch. Boxes are clipped to the resized image, then
scaled back to the original image, as mmdet's ``predict`` does. The graph
clips its proposals to the padded image where mmdet clips them to the
resized one: for images whose size is not a multiple of 32, a proposal
reaching into the padding can differ by those few pixels.
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
    p.add_argument('onnx', help='the exported graph (.onnx)')
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


def _padded_rgb(img, fill):
    """uint8 BGR (3, h, w) tensor -> float32 RGB (1, 3, H, W), H and W
    multiples of 32, padded with ``fill`` (3, 1, 1)."""
    import numpy as np
    h, w = img.shape[-2:]
    x = np.empty((1, 3, -(-h // 32) * 32, -(-w // 32) * 32), np.float32)
    x[:] = fill
    x[0, :, :h, :w] = img.numpy()[::-1]
    return x


def evaluate(cfg, session, model=None, log=print):
    """Run the test set through ``session`` (and ``model`` in PyTorch if
    given). Returns ``(onnx_metrics, pytorch_metrics or None, match)``,
    ``match`` the :func:`~shufflenet_det.deploy.parity.match_detections`
    totals of ONNX Runtime's detections against PyTorch's."""
    import numpy as np
    import torch
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner
    from mmengine.structures import InstanceData

    from shufflenet_det.deploy.parity import match_detections
    mp = cfg.model.data_preprocessor
    mean = np.float32(mp.get('mean', [0, 0, 0]))
    if not mp.get('bgr_to_rgb', False):
        mean = mean[::-1]  # the graph flips RGB to BGR first
    fill = mean[:, None, None]
    # One image per batch, in PyTorch too: mmdet pads a batch to its
    # largest image, and the proposals of an image then depend on the
    # others' sizes (anchors over the padding, clipped to the image).
    loader_cfg = cfg.test_dataloader.copy()
    loader_cfg.update(batch_size=1)
    loader = Runner.build_dataloader(loader_cfg)
    evaluators = [Evaluator(cfg.test_evaluator)]
    if model is not None:
        evaluators.append(Evaluator(cfg.test_evaluator))
    for e in evaluators:
        e.dataset_meta = loader.dataset.metainfo
    match = dict(reference=0, other=0, matched=0)
    done, start = 0, time.perf_counter()
    for batch in loader:
        ort_samples = []
        for img, sample in zip(batch['inputs'], batch['data_samples']):
            dets, labels = session.run(
                None, {'input': _padded_rgb(img, fill)})[:2]
            keep = dets[0, :, 4] > 0
            boxes = dets[0, keep, :4].copy()
            h, w = sample.img_shape
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
            sx, sy = sample.scale_factor
            boxes /= np.float32([sx, sy, sx, sy])
            out = sample.clone()
            out.pred_instances = InstanceData(
                bboxes=torch.from_numpy(boxes),
                scores=torch.from_numpy(dets[0, keep, 4].copy()),
                labels=torch.from_numpy(labels[0, keep].copy()))
            ort_samples.append(out)
        evaluators[0].process(data_samples=ort_samples, data_batch=batch)
        if model is not None:
            with torch.no_grad():
                pt_samples = model.test_step(batch)
            evaluators[1].process(data_samples=pt_samples, data_batch=batch)
            for a, b in zip(pt_samples, ort_samples):
                r = match_detections(*_padded(a), *_padded(b))
                for k in match:
                    match[k] += r[k]
        done += len(ort_samples)
        log(f'\r{done}/{len(loader.dataset)} images, '
            f'{time.perf_counter() - start:.0f} s', end='')
    log('')
    size = len(loader.dataset)
    results = [e.evaluate(size) for e in evaluators]
    return results[0], (results[1] if model is not None else None), match


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
        from shufflenet_det.utils.benchmark import build_detector
        for path in (args.config, args.onnx, args.checkpoint):
            if path and not osp.isfile(path):
                raise FileNotFoundError(f'{path} not found')
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        session = ort_session(args.onnx, args.threads)
        model = None
        if args.checkpoint:
            model = build_detector(cfg, args.checkpoint)
        try:
            ort_metrics, pt_metrics, match = evaluate(cfg, session, model)
        except Exception as e:  # noqa: BLE001
            if 'Got invalid dimensions' in str(e):
                raise ValueError(
                    f'{args.onnx} takes one input shape, the test images '
                    'have others: export it with --dynamic') from e
            raise
    print(f'ONNX Runtime: COCO bbox mAP {summary(ort_metrics)}')
    if pt_metrics is not None:
        print(f'PyTorch:      COCO bbox mAP {summary(pt_metrics)}')
        diff = 100 * abs(ort_metrics['coco/bbox_mAP']
                         - pt_metrics['coco/bbox_mAP'])
        print(f'mAP difference {diff:.2f} points; {match["matched"]} of '
              f'{match["reference"]} PyTorch detections matched in ONNX '
              f'Runtime (IoU >= 0.99, same label, score within 1e-3), '
              f'ONNX Runtime {match["other"]}')
    return ort_metrics, pt_metrics, match


if __name__ == '__main__':
    main()
