"""tools/deployment/quantize_onnx.py: the int8 graph of a small exported
detector (a seeded Table 7 cell, deploy_helpers.py, on the tiny shapes set
at 300x397, not a multiple of 32) runs in ONNX Runtime with the fp32
graph's interface and metadata, its convolutions and fcs quantised and
PSRoIAlign and the NMS not, pads and clips to the images as the fp32 graph
does; and the one-line errors.

Whether int8 keeps the detections of all four parts is tested on a trained
model (tests/models/test_learning/test_overfit.py): this seeded one has
near-tied scores everywhere (the RPN's 1000 proposals within a few
hundredths), where any rounding of the backbone or the RPN changes the
proposals and reorders the top 100. With the R-CNN's fcs alone in int8
(the proposals fp32's), it keeps them here too, at 300x397."""
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
from deploy_helpers import (ROOT, as_batch, exported_shapes_graph,
                            table7_config)

from shufflenet_det.deploy import ort_session
from shufflenet_det.deploy.export import read_metadata
from shufflenet_det.deploy.parity import match_detections

ort = pytest.importorskip('onnxruntime')
BASE = table7_config('shufflenetv2', '40m')
SHAPE = (300, 397)
# eval_onnx.py's criterion for int8 against fp32.
INT8_MATCH = dict(iou_thr=0.8, score_tol=0.05)


def run_tool(*args):
    return subprocess.run(
        [sys.executable, 'tools/deployment/quantize_onnx.py', *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def exported(tmp_path_factory, shapes_root, shapes_val):
    """The config and the --dynamic fp32 graph of a seeded detector (the
    config's class names in its metadata)."""
    config, _, onnx = exported_shapes_graph(
        tmp_path_factory.mktemp('int8'), shapes_root, shapes_val, BASE, SHAPE)
    return config, onnx


@pytest.fixture(scope='module')
def quantized(tmp_path_factory, exported, shapes_root):
    """The int8 graph of quantize_onnx.py (all four parts) and its output."""
    config, fp32 = exported
    out = str(tmp_path_factory.mktemp('int8_out') / 'model_int8.onnx')
    proc = run_tool(config, fp32, '--out', out, '--calib-images',
                    f'{shapes_root}/val')
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_int8_graph_runs_with_the_interface(exported, quantized, shapes_val):
    config, fp32 = exported
    out, proc = quantized
    # Every Conv and Gemm fused into an int8 kernel (none left in fp32
    # between a DequantizeLinear and a QuantizeLinear).
    found = re.search(r'int8 backbone, thin_map, rpn_head, rcnn_fcs \((\d+) '
                      r'of the (\d+) Conv/Gemm as int8 kernels: QGemm 3, '
                      r'QLinearConv (\d+); 7-bit weights\), the rest fp32; '
                      r'calibrated on 4 '
                      r'images', proc.stdout)
    assert found, proc.stdout
    assert int(found[1]) == int(found[2]) == 3 + int(found[3]) > 50

    import onnx
    model = onnx.load(out)
    ops = {n.op_type for n in model.graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops
    # PSRoIAlign and the NMS stay fp32: nothing quantised feeds them.
    dequantized = {o for n in model.graph.node
                   if n.op_type == 'DequantizeLinear' for o in n.output}
    for n in model.graph.node:
        if n.op_type in ('RoiAlign', 'NonMaxSuppression'):
            assert not set(n.input) & dequantized, n.name

    # The interface (img_shape with its default too) and the metadata:
    # the fp32 graph's, and the parts.
    assert read_metadata(out) == read_metadata(fp32)
    assert read_metadata(out)['classes'] == [
        'circle', 'rectangle', 'triangle', 'star', 'cross']
    assert read_metadata(out, 'shufflenet_det.int8_parts') == [
        'backbone', 'thin_map', 'rpn_head', 'rcnn_fcs']
    _, rgb = as_batch(shapes_val, SHAPE)
    int8 = ort_session(out, threads=1)
    assert [i.name for i in int8.get_inputs()] == ['input']
    assert [i.name for i in int8.get_overridable_initializers()] == [
        'img_shape']
    assert [o.name for o in int8.get_outputs()] == ['dets', 'labels']
    for n in (1, 2):
        dets, labels = int8.run(None, {'input': rgb[:n].numpy()})
        assert dets.shape == (n, 100, 5) and dets.dtype == np.float32
        assert labels.shape == (n, 100) and labels.dtype == np.int64
        unused = dets[..., 4] == 0
        assert (labels[unused] == -1).all() and (labels[~unused] >= 0).all()
        assert (np.diff(dets[..., 4], axis=1) <= 0).all()  # best first


def padded(rgb, shape, seed=0):
    """(N, 3, h, w) images at the top left of an (N, 3, H, W) input whose
    rest is noise, and their sizes."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (len(rgb), 3, *shape)).astype(np.float32)
    x[:, :, :rgb.shape[2], :rgb.shape[3]] = rgb.numpy()
    return x, np.array([rgb.shape[2:]] * len(rgb), np.int64)


def test_int8_pads_and_clips_at_300x397(exported, quantized, shapes_val):
    """The int8 graph on 300x397 images: the same detections whether the
    images come as they are (the graph pads them to 320x416) or padded by
    the caller with noise, their sizes given; every box within the image.
    """
    _, rgb = as_batch(shapes_val[:2], SHAPE)
    int8 = ort_session(quantized[0], threads=1)
    dets, labels = int8.run(None, {'input': rgb.numpy()})
    for shape in ((320, 416), (310, 400)):
        x, sizes = padded(rgb, shape)
        other = int8.run(None, {'input': x, 'img_shape': sizes})
        np.testing.assert_array_equal(other[0], dets)
        np.testing.assert_array_equal(other[1], labels)
    assert (dets[..., 4] > 0).all()
    boxes = dets[..., :4]
    assert (boxes >= 0).all()
    assert (boxes[..., 0::2] <= 397).all() and (boxes[..., 1::2] <= 300).all()


def test_int8_rcnn_fcs_match_fp32_at_300x397(tmp_path, exported,
                                             shapes_root, shapes_val):
    """The R-CNN's fcs in int8 (the rest fp32: the same proposals) keep
    fp32's detections at 300x397, images padded by the caller: 85% or more
    matched by eval_onnx.py's int8 criterion (the learning test's share;
    measured 382 of 400)."""
    from mmengine.config import Config

    from shufflenet_det.deploy.inputs import config_fill, pipeline_images
    from shufflenet_det.deploy.quantize import (ImageCalibrationReader,
                                                quantize_graph)
    config, fp32 = exported
    cfg = Config.fromfile(config)
    val = sorted(str(p) for p in (shapes_root / 'val').iterdir())
    out = str(tmp_path / 'fcs_int8.onnx')
    quantize_graph(fp32, out, ImageCalibrationReader(
        pipeline_images(cfg, val), config_fill(cfg)), parts=['rcnn_fcs'])
    _, rgb = as_batch(shapes_val, SHAPE)
    x, sizes = padded(rgb, (320, 416))
    feeds = {'input': x, 'img_shape': sizes}
    ref = ort_session(fp32, threads=1).run(None, feeds)
    dets, labels = ort_session(out, threads=1).run(None, feeds)
    report = match_detections(*ref, dets, labels, **INT8_MATCH)
    assert report['reference'] == 400
    assert report['matched'] >= 0.85 * report['reference'], report
    assert (dets[..., 0::2] <= 397).all() and (dets[..., 1:4:2] <= 300).all()


def test_weight_bits_keep_the_int16_pair_sums_exact(tmp_path):
    """7-bit weights (the default): an fc whose uint8 inputs and int8
    weights are all at the top of their ranges, where 8-bit weights would
    overflow the int16 pair sums of a CPU without VNNI, gives fp32's
    output on any CPU; its weights lie in [-64, 63]. With 8 bits they use
    [-127, 127] (for VNNI CPUs); other widths are refused."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from shufflenet_det.deploy.quantize import quantize_graph
    from shufflenet_det.deploy.wrapper import DeployError
    k, n = 64, 8
    rng = np.random.RandomState(0)
    weight = np.where(rng.rand(n, k) < 0.5, -1.0, 1.0).astype(np.float32)
    weight[:, :32] = np.abs(weight[:, :32])  # same-sign pairs: the worst
    graph = helper.make_graph(
        [helper.make_node('Gemm', ['x', 'w', 'b'], ['y'], transB=1,
                          name='/bbox_head/fc/Gemm')], 'fc',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, k])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, n])],
        [numpy_helper.from_array(weight, 'w'),
         numpy_helper.from_array(np.zeros(n, np.float32), 'b')])
    fp32 = str(tmp_path / 'fc.onnx')
    model = helper.make_model(graph, opset_imports=[
        helper.make_opsetid('', 17)])
    model.ir_version = 8  # one every ONNX Runtime reads
    onnx.save(model, fp32)

    class Reader:
        def __init__(self):
            self.batches = iter([{'x': np.full((1, k), v, np.float32)}
                                 for v in (0.0, 10.0)])

        def get_next(self):
            return next(self.batches, None)

    x = {'x': np.full((1, k), 10.0, np.float32)}
    ref = ort_session(fp32, threads=1).run(None, x)[0]
    for bits, top in ((7, 64), (8, 127)):
        out = str(tmp_path / f'fc_{bits}.onnx')
        info = quantize_graph(fp32, out, Reader(), parts=['rcnn_fcs'],
                              weight_bits=bits)
        assert info['weight_bits'] == bits
        ints = [numpy_helper.to_array(t) for t in onnx.load(out).graph
                .initializer if t.data_type == TensorProto.INT8]
        assert max(np.abs(w).max() for w in ints) == top
        if bits == 7:
            got = ort_session(out, threads=1).run(None, x)[0]
            np.testing.assert_allclose(got, ref, rtol=0.02, atol=1.0)
    with pytest.raises(DeployError, match='choose 7'):
        quantize_graph(fp32, out, Reader(), parts=['rcnn_fcs'],
                       weight_bits=6)


@pytest.mark.parametrize('case', ['empty_dir', 'wrong_config',
                                  'other_test_cfg'])
def test_errors_in_one_line(tmp_path, exported, shapes_root, case):
    config, fp32 = exported
    if case == 'empty_dir':
        (tmp_path / 'calib').mkdir()
        args = [config, fp32, '--calib-images', str(tmp_path / 'calib')]
        message = f'error: {tmp_path / "calib"}: no image in this folder'
    elif case == 'other_test_cfg':  # the graph computes with 6000
        args = [config, fp32, '--cfg-options',
                'model.test_cfg.rpn.nms_pre=1000']
        message = (f'error: {fp32} was exported with '
                   'model.test_cfg.rpn.nms_pre = 6000, the config has 1000')
    else:  # the graph has 5 classes, the Table 7 cell 80
        args = [BASE, fp32]
        message = (f'error: {fp32} was exported from a detector of 5 '
                   'classes, the config has 80')
    out = tmp_path / 'x.onnx'
    proc = run_tool(*args, '--out', str(out))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith(message), proc.stderr
    assert lines[1].startswith('Run again with --debug')
    assert not osp.exists(out)


def test_openvino_int8_ir(tmp_path, exported, shapes_root):
    """--backend openvino: the NNCF int8 IR of the same parts, calibrated
    on the same images; check_ir accepts it against the config and
    eval_onnx.py --backend openvino evaluates it beside the fp32 graph."""
    pytest.importorskip('openvino')
    pytest.importorskip('nncf')
    from mmengine.config import Config

    from shufflenet_det.deploy.openvino import check_ir, int8_weights
    config, fp32 = exported
    out = str(tmp_path / 'model_int8.xml')
    proc = run_tool(config, fp32, '--out', out, '--backend', 'openvino',
                    '--calib-images', f'{shapes_root}/val')
    assert proc.returncode == 0, proc.stderr[-3000:]
    layers = sum(n for kinds in int8_weights(out).values()
                 for n in kinds.values())
    assert layers > 50
    assert (f'{out}: int8 backbone, thin_map, rpn_head, rcnn_fcs ({layers} '
            'convolutions and fcs with int8 weights, NNCF; 7-bit weights), the '
            'rest fp32; '
            'calibrated on 4 images of') in proc.stdout
    assert osp.isfile(out[:-4] + '.bin')
    assert check_ir(Config.fromfile(config), out) == read_metadata(fp32)
    proc = subprocess.run(
        [sys.executable, 'tools/deployment/eval_onnx.py', config, fp32, out,
         '--backend', 'openvino', '--threads', '1'], cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ('OpenVINO f32 (int8, model_int8.xml): COCO bbox mAP '
            in proc.stdout)
    assert '; int8: backbone, thin_map, rpn_head, rcnn_fcs' in proc.stdout
    assert re.search(r'model_int8.xml against model.onnx: mAP difference '
                     r'[\d.]+ points; \d+ of 400 fp32 detections matched',
                     proc.stdout), proc.stdout
    # An IR is written as .xml and .bin: another name is refused.
    proc = run_tool(config, fp32, '--out', str(tmp_path / 'x.onnx'),
                    '--backend', 'openvino')
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[0].startswith(
        f'error: --out {tmp_path / "x.onnx"}: an OpenVINO IR is written as '
        'NAME.xml'), proc.stderr
