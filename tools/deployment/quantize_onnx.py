"""Quantise an exported Light-Head R-CNN graph to int8 for ONNX Runtime on
the CPU: static quantisation with ONNX Runtime's tools (QDQ format, int8
weights per output channel, uint8 activations, MinMax ranges calibrated on
images); or, with ``--backend openvino``, to an OpenVINO int8 IR with NNCF's
post-training quantisation, calibrated on the same images.

    python tools/deployment/export_onnx.py configs/demo/lighthead_v2star_shapes.py \\
        $(cat work_dirs/demo/last_checkpoint) --out demo.onnx --dynamic
    python tools/deployment/quantize_onnx.py configs/demo/lighthead_v2star_shapes.py \\
        demo.onnx --out demo_int8.onnx --calib-images data/shapes/train --num 32
    python tools/deployment/quantize_onnx.py configs/demo/lighthead_v2star_shapes.py \
        demo.onnx --out demo_int8.xml --backend openvino

``eval_onnx.py`` evaluates both graphs beside PyTorch in one run, ``--backend
onnxruntime-int8`` of ``tools/analysis/benchmark.py`` times the int8 graph.
The int8 graph has the fp32 graph's interface (``input``, ``img_shape`` ->
``dets``, ``labels``; ``export_onnx.py``'s docstring) and its metadata (the
``test_cfg``, preprocessing and classes it computes with); a config that
disagrees with the fp32 graph's metadata is refused. Calibration images
(``--calib-images``: a folder, or a text file of image paths one a line;
default: the config's training images) go through the config's test
pipeline and the graph's own input layout (RGB float32 0-255, with each
image's size as ``img_shape``); ``--num`` of them, spread evenly over the
sorted list. A graph exported without ``--dynamic`` is calibrated on
batches of its batch size and shape.

``--parts`` chooses what is quantised: ``backbone``, ``thin_map``,
``rpn_head``, ``rcnn_fcs`` (the R-CNN's fc 2048 and its class and box fcs);
default all four. The normalisation, the RPN post-processing, PSRoIAlign,
the R-CNN post-processing and both NMS always stay fp32
(``shufflenet_det.deploy.quantize``; docs/int8.md has the accuracy and
speed per part).

``--weight-bits``: 7 by default, exact on every x86 CPU; 8 only for graphs
that run on CPUs with VNNI or AMX (without VNNI, the uint8 x int8 kernels
of both runtimes add pairs of products into int16, which 8-bit weights
overflow; ``shufflenet_det.deploy.quantize``; in OpenVINO, NNCF's overflow
fix in every layer, or none).

``--backend openvino`` writes ``--out`` (.xml) and its .bin: the same
parts quantised by NNCF (``shufflenet_det.deploy.openvino.ov_quantize``),
everything else fp32, with the fp32 graph's metadata; ``eval_onnx.py
--backend openvino`` evaluates it, ``--backend openvino-int8`` of the
benchmark times it (docs/openvino.md).
"""
import argparse
import os.path as osp
import time

from mmengine.config import DictAction

from shufflenet_det.deploy.quantize import DEFAULT_PARTS, PARTS
from shufflenet_det.utils.cli import user_errors


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='the config the graph was exported from')
    p.add_argument('onnx', help='the fp32 graph of export_onnx.py')
    p.add_argument('--out', required=True,
                   help='the int8 .onnx to write (.xml with --backend '
                   'openvino)')
    p.add_argument('--backend', choices=['onnxruntime', 'openvino'],
                   default='onnxruntime',
                   help='quantise for this runtime (default: %(default)s)')
    p.add_argument('--calib-images', metavar='DIR|LIST',
                   help='calibration images: a folder, or a text file of '
                   'image paths (default: the config\'s training images)')
    p.add_argument('--num', type=int, default=32,
                   help='calibration images used (default 32)')
    p.add_argument('--parts', nargs='+', choices=list(PARTS),
                   default=list(DEFAULT_PARTS),
                   help='what to quantise (default: %(default)s)')
    p.add_argument('--weight-bits', type=int, choices=[7, 8], default=7,
                   metavar='{7,8}',
                   help='int8 weights in 7 bits (default: exact on every '
                   'x86 CPU) or 8 (for CPUs with VNNI or AMX only: without '
                   'VNNI the int16 sums of 8-bit products overflow)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    p.add_argument('--debug', action='store_true',
                   help='show the full traceback of an error')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with user_errors(args.debug):
        from mmengine.config import Config
        from mmengine.registry import init_default_scope

        from shufflenet_det.apis.calibration import calibration_reader
        from shufflenet_det.deploy.export import check_graph
        for path in (args.config, args.onnx):
            if not osp.isfile(path):
                raise FileNotFoundError(f'{path} not found')
        if args.backend == 'openvino' and not args.out.endswith('.xml'):
            raise ValueError(f'--out {args.out}: an OpenVINO IR is written '
                             'as NAME.xml (and NAME.bin): give a .xml')
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        check_graph(cfg, args.onnx)
        reader, source = calibration_reader(cfg, args.onnx,
                                            args.calib_images, args.num)
        start = time.perf_counter()
        if args.backend == 'openvino':
            from shufflenet_det.deploy.openvino import ov_quantize
            info = ov_quantize(args.onnx, args.out, reader, args.parts,
                               weight_bits=args.weight_bits)
            layers = sum(n for kinds in info['int8_weights'].values()
                         for n in kinds.values())
            what = (f'{layers} convolutions and fcs with int8 weights, NNCF; '
                    f'{args.weight_bits}-bit weights')
            size = sum(osp.getsize(args.out[:-4] + ext)
                       for ext in ('.xml', '.bin'))
        else:
            from shufflenet_det.deploy.quantize import quantize_graph
            info = quantize_graph(args.onnx, args.out, reader, args.parts,
                                  weight_bits=args.weight_bits)
            kernels = ', '.join(f'{op} {n}'
                                for op, n in info['int8_kernels'].items())
            what = (f'{info["int8_nodes"]} of the {info["convs_gemms"]} '
                    f'Conv/Gemm as int8 kernels: {kernels}; '
                    f'{args.weight_bits}-bit weights')
            size = osp.getsize(args.out)
        print(f'{args.out}: int8 {", ".join(info["parts"])} ({what}), the '
              f'rest fp32; calibrated on {reader.seen} images of {source}; '
              f'{size / 2**20:.1f} MiB (fp32 '
              f'{osp.getsize(args.onnx) / 2**20:.1f} MiB), '
              f'{time.perf_counter() - start:.1f} s')
    return info


if __name__ == '__main__':
    main()
