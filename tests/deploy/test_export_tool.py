"""tools/deployment/export_onnx.py: a --dynamic graph that ONNX Runtime runs
at other batch sizes and image sizes with the documented interface (the
optional ``img_shape`` input included) and its metadata, and the one-line
errors."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from deploy_helpers import ROOT, table7_config

ort = pytest.importorskip('onnxruntime')
CONFIG = table7_config('shufflenetv2', '40m')


def run_tool(*args):
    return subprocess.run(
        [sys.executable, 'tools/deployment/export_onnx.py', *args], cwd=ROOT,
        capture_output=True, text=True, timeout=300)


def test_export_dynamic_and_run_in_onnxruntime(tmp_path):
    out = str(tmp_path / 'lighthead.onnx')
    # A score threshold that the untrained model's scores (~1/81) do not
    # reach: every row is padding.
    proc = run_tool(CONFIG, '--out', out, '--dynamic', '--shape', '256',
                    '320', '--verify', '--cfg-options',
                    'model.test_cfg.rcnn.score_thr=0.5')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (f'{out}: input (float32, N, 3, H, W) RGB 0-255, img_shape '
            '(int64, N or 1, 2; optional) -> dets (float32, N, 100, 5), '
            'labels (int64, N, 100)') in proc.stdout
    assert 'verify (1 random images)' in proc.stdout
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    # img_shape has a default value: ONNX Runtime lists it apart.
    assert [i.name for i in session.get_inputs()] == ['input']
    assert [i.name for i in session.get_overridable_initializers()] == [
        'img_shape']
    assert [o.name for o in session.get_outputs()] == ['dets', 'labels']
    rng = np.random.default_rng(0)
    for n, h, w in ((1, 256, 320), (3, 300, 397)):
        x = rng.integers(0, 256, (n, 3, h, w)).astype(np.float32)
        for feeds in ({'input': x}, {'input': x, 'img_shape': np.array(
                [[h - 10, w - 20]] * n)}):
            dets, labels = session.run(None, feeds)
            assert dets.shape == (n, 100, 5) and dets.dtype == np.float32
            assert labels.shape == (n, 100) and labels.dtype == np.int64
            assert (dets == 0).all() and (labels == -1).all()

    # The metadata: the config as exported (--cfg-options included), the
    # COCO class names of its data set.
    from shufflenet_det.deploy.export import read_metadata
    meta = read_metadata(out)
    assert meta['test_cfg']['rcnn'] == dict(
        score_thr=0.5, nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100)
    assert meta['test_cfg']['rpn']['max_per_img'] == 1000
    assert meta['preprocess'] == dict(
        input_channel_order='RGB', bgr_to_rgb=True,
        mean=pytest.approx([123.675, 116.28, 103.53]),
        std=pytest.approx([58.395, 57.12, 57.375]), pad_size_divisor=32,
        pad_value=0.0)
    assert meta['num_classes'] == 80 and len(meta['classes']) == 80
    assert meta['classes'][:2] == ['person', 'bicycle']
    assert meta['pool_mode'] == 'max' and meta['format'] == 1


@pytest.mark.parametrize('args,message', [
    (['--shape', '0', '1200'], 'error: --shape 0 1200: height and width '
     'must be positive'),
    (['missing.pth'], 'error: checkpoint missing.pth not found'),
])
def test_errors_in_one_line(tmp_path, args, message):
    proc = run_tool(CONFIG, *args, '--out', str(tmp_path / 'x.onnx'))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith(message), proc.stderr
    assert lines[1].startswith('Run again with --debug')
    assert not osp.exists(tmp_path / 'x.onnx')
