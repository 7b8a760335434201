"""OpenVINO against ONNX Runtime on the same feeds, in one interleaved
timing (:func:`~.timing.time_interleaved`): the speed of each backend and
precision, and how many of ONNX Runtime fp32's detections each keeps
(docs/openvino.md has the numbers of this machine)."""
import os.path as osp
import tempfile

from ..deploy.export import ort_session
from ..deploy.openvino import PRECISIONS, ov_compile, ov_core, ov_quantize
from ..deploy.parity import match_detections
from ..deploy.quantize import quantize_graph
from .timing import time_interleaved

#: int8 against fp32: eval_onnx.py's criterion; fp32 backends: the parity
#: tests'.
INT8_MATCH = dict(iou_thr=0.8, score_tol=0.05)
FP_MATCH = dict(iou_thr=0.99, score_tol=1e-3)


def compare_backends(fp32_path, feeds, calib_feeds, threads=2, iters=10,
                     work_dir=None):
    """ONNX Runtime fp32 and int8, OpenVINO f32, bf16 (where the CPU has
    it) and int8 on ``feeds`` (the graph's inputs, :func:`~..deploy.
    inputs.graph_feeds`), ``threads`` each, timed interleaved.

    Args:
        fp32_path (str): the exported graph.
        calib_feeds (list[dict]): the calibration batches of both int8
            graphs.
        work_dir (str, optional): where the int8 graphs are written
            (default: a temporary folder).

    Returns:
        list[dict]: per backend, ``name``, ``median_s``, ``iqr_s``,
        ``ratio`` (its median over ONNX Runtime fp32's) and ``matched`` /
        ``reference`` (:func:`~..deploy.parity.match_detections` against
        ONNX Runtime fp32).
    """
    with tempfile.TemporaryDirectory(prefix='backends_') as tmp:
        work_dir = work_dir or tmp
        ort_int8 = osp.join(work_dir, 'int8.onnx')
        ov_int8 = osp.join(work_dir, 'int8.xml')
        quantize_graph(fp32_path, ort_int8, _Reader(calib_feeds))
        ov_quantize(fp32_path, ov_int8, calib_feeds)
        sessions = {'onnxruntime fp32': ort_session(fp32_path, threads),
                    'onnxruntime int8': ort_session(ort_int8, threads),
                    'openvino f32': ov_compile(fp32_path, 'f32', threads)}
        if _has(PRECISIONS['bf16']):
            sessions['openvino bf16'] = ov_compile(fp32_path, 'bf16', threads)
        sessions['openvino int8'] = ov_compile(ov_int8, 'f32', threads)
        names = list(sessions)
        outputs = {n: s.run(None, feeds) for n, s in sessions.items()}
        timed = time_interleaved(
            [lambda s=s: s.run(None, feeds) for s in sessions.values()],
            'cpu', iters=iters, names=names)
    ref = outputs['onnxruntime fp32']
    base = timed[0]['median_s']
    rows = []
    for name, res in zip(names, timed):
        match = match_detections(*ref, *outputs[name], **(
            INT8_MATCH if 'int8' in name else FP_MATCH))
        rows.append(dict(name=name, median_s=res['median_s'],
                         iqr_s=res['iqr_s'], ratio=res['median_s'] / base,
                         matched=match['matched'],
                         reference=match['reference']))
    return rows


def compare_on_images(config, fp32_path, image_dir, batch_size=4,
                      threads=2, iters=10, size=None):
    """:func:`compare_backends` on the first ``batch_size`` images of
    ``image_dir`` through ``config``'s test pipeline (resized to ``size``
    (H, W), if given), calibrated on the same images one at a time; prints
    a line per backend and returns the rows."""
    import glob

    import mmcv
    from mmengine.config import Config

    from ..deploy.inputs import config_fill, graph_feeds, pipeline_images
    cfg = Config.fromfile(config)
    paths = sorted(glob.glob(osp.join(image_dir, '*')))[:batch_size]
    images = list(pipeline_images(cfg, paths))
    if size is not None:
        images = [mmcv.imresize(im.permute(1, 2, 0).numpy(), size[::-1])
                  .transpose(2, 0, 1) for im in images]
    fill = config_fill(cfg)
    feeds = graph_feeds(images, fill)
    calib = [graph_feeds([im], fill) for im in images]
    rows = compare_backends(fp32_path, feeds, calib, threads, iters)
    n, _, h, w = feeds['input'].shape
    for r in rows:
        print(f'{r["name"]:17s} batch {n} {h}x{w}: '
              f'{r["median_s"] * 1000:8.1f} ms (IQR {r["iqr_s"] * 1000:.1f})'
              f' x{r["ratio"]:.2f} of onnxruntime fp32; detections '
              f'{r["matched"]} of {r["reference"]} matched')
    return rows


class _Reader:
    """ONNX Runtime's calibration reader over ready feeds."""

    def __init__(self, feeds):
        self.feeds = iter(feeds)

    def get_next(self):
        return next(self.feeds, None)


def _has(capability):
    return capability in ov_core().get_property('CPU',
                                                'OPTIMIZATION_CAPABILITIES')
