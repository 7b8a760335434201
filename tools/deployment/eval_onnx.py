"""COCO evaluation of exported Light-Head R-CNN graphs in ONNX Runtime or
OpenVINO, on the config's test set: one graph, or several (fp32 and the
int8 graph of ``quantize_onnx.py``) on the same images in the same run;
with ``--checkpoint``, PyTorch (mmdet's ``predict``) too, and how far apart
they are.

    python tools/deployment/export_onnx.py configs/demo/lighthead_v2star_shapes.py \\
        $(cat work_dirs/demo/last_checkpoint) --out demo.onnx --dynamic
    python tools/deployment/quantize_onnx.py configs/demo/lighthead_v2star_shapes.py \\
        demo.onnx --out demo_int8.onnx
    python tools/deployment/eval_onnx.py configs/demo/lighthead_v2star_shapes.py \\
        demo.onnx demo_int8.onnx --checkpoint $(cat work_dirs/demo/last_checkpoint)
    python tools/deployment/quantize_onnx.py configs/demo/lighthead_v2star_shapes.py \
        demo.onnx --out demo_int8.xml --backend openvino
    python tools/deployment/eval_onnx.py configs/demo/lighthead_v2star_shapes.py \
        demo.onnx demo_int8.xml --backend openvino --ov-precision f32

``--backend openvino`` runs the graphs in OpenVINO (the .onnx as it is,
and int8 IRs, .xml, of ``quantize_onnx.py --backend openvino``) at the
inference precision ``--ov-precision`` (f32 by default; bf16 on CPUs with
bf16 only), which the report gives as read back from each compiled graph:
``OpenVINO f32 (fp32, demo.onnx)``, ``OpenVINO f32 (int8, demo_int8.xml)``
(int8 layers, the rest f32). docs/openvino.md has more.

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

Each graph runs as an mmengine model
(:class:`shufflenet_det.apis.onnxruntime.OnnxRuntimeDetector`,
``OpenVINODetector``), evaluated by the
config's ``test_evaluator`` (:mod:`shufflenet_det.apis.evaluation`).
"""
import argparse
import os.path as osp

from mmengine.config import DictAction

from shufflenet_det.utils.cli import user_errors


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='the config the graph was exported from')
    p.add_argument('onnx', nargs='+',
                   help='the exported graph(s) (.onnx), fp32 or int8; with '
                   '--backend openvino also int8 IRs (.xml)')
    p.add_argument('--checkpoint',
                   help='also evaluate these weights in PyTorch on the same '
                   'images, and compare')
    p.add_argument('--threads', type=int, default=None,
                   help='the runtime\'s intra-op threads')
    p.add_argument('--backend', choices=['onnxruntime', 'openvino'],
                   default='onnxruntime',
                   help='the runtime (default: %(default)s)')
    p.add_argument('--ov-precision', choices=['f32', 'bf16'], default='f32',
                   help='OpenVINO\'s inference precision (default: '
                   '%(default)s; bf16 needs a CPU with bf16)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    p.add_argument('--debug', action='store_true',
                   help='show the full traceback of an error')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with user_errors(args.debug):
        from mmengine.config import Config

        from shufflenet_det.apis.evaluation import (evaluate_graphs,
                                                    report_lines)
        for path in (args.config, *args.onnx, args.checkpoint):
            if path and not osp.isfile(path):
                raise FileNotFoundError(f'{path} not found')
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        result = evaluate_graphs(cfg, args.onnx, args.checkpoint,
                                 args.threads, backend=args.backend,
                                 precision=args.ov_precision)
    for line in report_lines(result):
        print(line)
    return result['metrics'], result['pytorch_metrics'], result['matches']


if __name__ == '__main__':
    main()
