"""Detect objects in your own images with a trained config and checkpoint
(mmdet's ``DetInferencer``, with the project's modules registered).

    python tools/infer.py CONFIG CHECKPOINT photo.jpg
    python tools/infer.py CONFIG CHECKPOINT frames/ --out-dir work_dirs/infer
    python tools/infer.py CONFIG CHECKPOINT frames.txt --score-thr 0.5
    python tools/infer.py CONFIG detector.onnx photo.jpg --backend openvino
    python tools/infer.py CONFIG detector_int8.xml frames/ --threads 2

INPUTS are images, folders of images (not recursive) or text files listing
image paths, one a line (e.g. video frames dumped with
``ffmpeg -i video.mp4 frames/%06d.jpg``; blank lines and ``#`` comments are
skipped; a relative path is taken from the list file's folder, or else from
the current directory). Written under ``--out-dir``: ``vis/NAME`` (the image
with the detections scoring at least ``--score-thr`` drawn) and
``preds/NAME.json`` (every detection: ``bboxes`` as ``[x1, y1, x2, y2]`` in
the image's stored pixels, ``scores``, ``labels``; mmdet's format).
CHECKPOINT may be an exported graph (tools/deployment/export_onnx.py,
quantize_onnx.py): an .onnx runs in ONNX Runtime (or ``--backend
openvino``), an OpenVINO int8 IR (.xml) in OpenVINO, on the CPU, checked
against CONFIG first; the pictures and JSON are the same.
The logic is :mod:`shufflenet_det.apis.inference`.
"""
import argparse
import os.path as osp


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw and save the detections of a trained detector on '
        'images, folders of images or lists of image paths')
    parser.add_argument('config', help='config file the checkpoint was '
                        'trained with')
    parser.add_argument('checkpoint', help='checkpoint file (.pth), or an '
                        'exported graph (.onnx, OpenVINO .xml)')
    parser.add_argument('inputs', nargs='+', metavar='INPUTS',
                        help='an image, a folder of images, or a text file '
                        'listing image paths (one a line)')
    parser.add_argument('--out-dir', default='work_dirs/infer',
                        help='where vis/ and preds/ are written (default: '
                        '%(default)s)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='draw (and count) the detections scoring at '
                        'least this (default: %(default)s); the JSON files '
                        'hold every detection')
    parser.add_argument('--device', default=None,
                        help='cpu, cuda or cuda:N (default: cuda if there '
                        'is one, else cpu; an exported graph runs on cpu)')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images per forward pass (default: %(default)s)')
    parser.add_argument('--backend', choices=['onnxruntime', 'openvino'],
                        help='runtime of an exported graph (default: '
                        'onnxruntime for .onnx, openvino for .xml)')
    parser.add_argument('--threads', type=int, default=None,
                        help='the runtime\'s CPU threads (a graph)')
    parser.add_argument('--ov-precision', choices=['f32', 'bf16'],
                        default='f32', help='OpenVINO\'s inference precision '
                        '(default: %(default)s; bf16 needs a CPU with it)')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from shufflenet_det.utils.cli import user_errors
    with user_errors(args.debug):
        from shufflenet_det.apis.inference import run_inference
        images, predictions = run_inference(
            args.config, args.checkpoint, args.inputs, args.out_dir,
            args.score_thr, args.device, args.batch_size, args.backend,
            args.threads, args.ov_precision)
    shown = sum(sum(s >= args.score_thr for s in p['scores'])
                for p in predictions)
    out = args.out_dir
    print(f'{len(images)} image(s), {shown} detection(s) with score >= '
          f'{args.score_thr}: pictures in {osp.join(out, "vis")}, '
          f'predictions in {osp.join(out, "preds")}')
    return images, predictions


if __name__ == '__main__':
    main()
