"""tools/deployment/quantize_onnx.py: the int8 graph of a small exported
detector (a seeded Table 7 cell, deploy_helpers.py, on the tiny shapes set
at 288x384) runs in ONNX Runtime with the fp32 graph's interface, its
convolutions and fcs quantised and PSRoIAlign and the NMS not; and the
one-line errors.

Whether int8 keeps the detections is tested on a trained model
(tests/models/test_learning/test_overfit.py): this seeded one has
near-tied scores everywhere (hundreds of boxes within a few hundredths),
where any rounding reorders the top 100."""
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
from deploy_helpers import (ROOT, as_batch, decisive_model, shapes_config,
                            table7_config)

from shufflenet_det.deploy import export_onnx, ort_session

ort = pytest.importorskip('onnxruntime')
BASE = table7_config('shufflenetv2', '40m')
SHAPE = (288, 384)


def run_tool(*args):
    return subprocess.run(
        [sys.executable, 'tools/deployment/quantize_onnx.py', *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def exported(tmp_path_factory, shapes_root, shapes_val):
    """The config and the --dynamic fp32 graph of a seeded detector."""
    tmp = tmp_path_factory.mktemp('int8')
    config = shapes_config(tmp / 'shapes.py', shapes_root, BASE, SHAPE)
    bgr, _ = as_batch(shapes_val, SHAPE)
    model = decisive_model(config, bgr)
    onnx = str(tmp / 'model.onnx')
    export_onnx(model, onnx, SHAPE, dynamic=True)
    return config, onnx


def test_int8_graph_runs_with_the_interface(tmp_path, exported, shapes_root,
                                            shapes_val):
    config, fp32 = exported
    out = str(tmp_path / 'model_int8.onnx')
    proc = run_tool(config, fp32, '--out', out, '--calib-images',
                    f'{shapes_root}/val')
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Every Conv and Gemm fused into an int8 kernel (none left in fp32
    # between a DequantizeLinear and a QuantizeLinear).
    found = re.search(r'int8 backbone, thin_map, rpn_head, rcnn_fcs \((\d+) '
                      r'of the (\d+) Conv/Gemm as int8 kernels: QGemm 3, '
                      r'QLinearConv (\d+)\), the rest fp32; calibrated on 4 '
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

    # The interface, on batches of one and two.
    _, rgb = as_batch(shapes_val, SHAPE)
    int8 = ort_session(out, threads=1)
    assert [i.name for i in int8.get_inputs()] == ['input']
    assert [o.name for o in int8.get_outputs()] == ['dets', 'labels']
    for n in (1, 2):
        dets, labels = int8.run(None, {'input': rgb[:n].numpy()})
        assert dets.shape == (n, 100, 5) and dets.dtype == np.float32
        assert labels.shape == (n, 100) and labels.dtype == np.int64
        unused = dets[..., 4] == 0
        assert (labels[unused] == -1).all() and (labels[~unused] >= 0).all()
        assert (np.diff(dets[..., 4], axis=1) <= 0).all()  # best first


@pytest.mark.parametrize('case', ['empty_dir', 'wrong_config'])
def test_errors_in_one_line(tmp_path, exported, shapes_root, case):
    config, fp32 = exported
    if case == 'empty_dir':
        (tmp_path / 'calib').mkdir()
        args = [config, fp32, '--calib-images', str(tmp_path / 'calib')]
        message = f'error: {tmp_path / "calib"}: no image in this folder'
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
