"""Export a Light-Head R-CNN or a ThunderNet to one ONNX graph:
normalisation, backbone, thin map (ThunderNet: CEM and SAM), RPN with its
proposal NMS, PSRoIAlign, R-CNN and the per-class NMS, in standard ONNX
operators (opset 16), for ONNX Runtime and OpenVINO. ThunderNet's soft-NMS
has no ONNX operator: add --cfg-options model.test_cfg.rcnn.nms.type=nms.

    python tools/deployment/export_onnx.py configs/lighthead_v2star.py \\
        work_dirs/lighthead_v2star/iter_150500.pth --out lighthead.onnx
    python tools/deployment/export_onnx.py CONFIG CKPT --out F --dynamic
    python tools/deployment/export_onnx.py CONFIG --out F --shape 480 640 \\
        --batch-size 4 --verify

Inputs ``input``: float32 (N, 3, H, W), RGB pixel values 0-255, any H and
W, each image at the top left; ``img_shape``: int64 (N, 2) or (1, 2), each
image's (h, w), optional (default: all of ``input``). The graph pads to
multiples of 32 and sets what lies outside each image to the padding colour
itself, as mmdet's data preprocessor does, and clips its boxes to each
image. Outputs ``dets`` float32 (N, K, 5): x1, y1, x2, y2, score in input
pixels, best first; ``labels`` int64 (N, K); K = the config's
``test_cfg.rcnn.max_per_img``; rows without a detection have score 0 and
label -1. The graph's metadata holds its ``test_cfg``, mean, std, channel
order, padding and class names (docs/deployment.md); the other deployment
tools refuse a config that disagrees with it. Without ``--dynamic`` the
graph takes exactly ``--batch-size`` images of ``--shape``; with it, any
batch size and size. Without a checkpoint the weights are the model's
seeded initialisation (for timing). ``--verify`` compares the detections
of ONNX Runtime with those of mmdet's ``predict`` in PyTorch on random
images (a trained checkpoint gives detections to compare; random weights
give near-ties).
"""
import argparse
import importlib
import os.path as osp
import time

from mmengine.config import DictAction

from shufflenet_det.utils.cli import user_errors


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='a LightHeadRCNN or ThunderNet config')
    p.add_argument('checkpoint', nargs='?',
                   help='trained weights (default: seeded random weights)')
    p.add_argument('--out', required=True, help='the .onnx file to write')
    p.add_argument('--shape', type=int, nargs=2, default=[800, 1216],
                   metavar=('H', 'W'),
                   help='input height and width (default 800 1216)')
    p.add_argument('--batch-size', type=int, default=1,
                   help='images per batch of the graph (default 1)')
    p.add_argument('--dynamic', action='store_true',
                   help='any batch size and image size')
    p.add_argument('--verify', action='store_true',
                   help='compare ONNX Runtime with PyTorch on random images')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    p.add_argument('--debug', action='store_true',
                   help='show the full traceback of an error')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with user_errors(args.debug):
        if args.checkpoint and not osp.isfile(args.checkpoint):
            raise FileNotFoundError(f'checkpoint {args.checkpoint} not found')
        if not osp.isfile(args.config):
            raise FileNotFoundError(f'config {args.config} not found')
        try:
            importlib.import_module('onnx')
        except ImportError:
            raise ImportError(
                'the onnx package is missing: pip install -e .[deploy] (or '
                'make setup, which installs it)') from None
        from mmengine.config import Config

        from shufflenet_det.deploy import export_onnx
        from shufflenet_det.apis.detector import build_detector
        from shufflenet_det.deploy.export import (check_shape, config_classes,
                                                  verify_graph)
        check_shape(args.shape)
        start = time.perf_counter()
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        model = build_detector(cfg, args.checkpoint)
        wrapper = export_onnx(model, args.out, tuple(args.shape),
                              args.batch_size, args.dynamic,
                              classes=config_classes(cfg))
        n = 'N' if args.dynamic else args.batch_size
        hw = 'H, W' if args.dynamic else f'{args.shape[0]}, {args.shape[1]}'
        k = wrapper.max_per_img
        print(f'{args.out}: input (float32, {n}, 3, {hw}) RGB 0-255, '
              f'img_shape (int64, {n} or 1, 2; optional) -> dets (float32, '
              f'{n}, {k}, 5), labels (int64, {n}, {k}); '
              f'{osp.getsize(args.out) / 2**20:.1f} MiB, exported in '
              f'{time.perf_counter() - start:.1f} s')
        if args.verify:
            report = verify_graph(args.out, model, args.shape,
                                  args.batch_size, k)
            print(f'verify ({args.batch_size} random images): PyTorch '
                  f'{report["reference"]} detections, ONNX Runtime '
                  f'{report["other"]}, {report["matched"]} matched (IoU >= '
                  '0.99, same label, score within 1e-3)')
            if report['reference'] == 0:
                print('verify: no detection above the score threshold on '
                      'random images (untrained weights?): nothing to '
                      'compare')


if __name__ == '__main__':
    main()
