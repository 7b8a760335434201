"""tools/deployment/eval_onnx.py: COCO evaluation of the exported graph in
ONNX Runtime beside PyTorch's on the same test images (a Table 7 cell on a
tiny shapes set, its images resized to 397x300 without keeping their
aspect ratio: the boxes are scaled back to the originals by two factors),
and of its int8 graph in the same run; and its refusal of a config that
disagrees with the graph.

300x397 is not a multiple of 32: mmdet pads it to 320x416 and clips its
boxes to 300x397, and so does the graph, from the size the tool gives it;
every detection must match."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
from deploy_helpers import (ROOT, exported_shapes_graph,
                            table7_config)


pytest.importorskip('onnxruntime')
BASE = table7_config('shufflenetv2', '40m')
SHAPE = (300, 397)


def run_tool(*args):
    return subprocess.run(
        [sys.executable, 'tools/deployment/eval_onnx.py', *args, '--threads',
         '1'], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def exported(tmp_path_factory, shapes_root, shapes_val):
    """The config, a seeded model's checkpoint and its --dynamic graph (the
    config's class names in its metadata)."""
    from mmengine.runner import save_checkpoint
    tmp = tmp_path_factory.mktemp('eval')
    config, model, onnx = exported_shapes_graph(tmp, shapes_root, shapes_val,
                                                BASE, SHAPE)
    ckpt = str(tmp / 'model.pth')
    save_checkpoint(dict(state_dict=model.state_dict()), ckpt)
    return config, ckpt, onnx


def test_onnx_and_pytorch_give_the_same_coco_map(tmp_path, exported,
                                                 shapes_root):
    from mmengine.config import Config

    from shufflenet_det.deploy.quantize import (

        ImageCalibrationReader,

        quantize_graph,

    )

    from shufflenet_det.deploy.inputs import config_fill, pipeline_images
    config, ckpt, onnx = exported
    cfg = Config.fromfile(config)
    int8 = str(tmp_path / 'model_int8.onnx')
    val = sorted((shapes_root / 'val').iterdir())
    quantize_graph(onnx, int8, ImageCalibrationReader(
        pipeline_images(cfg, [str(p) for p in val]), config_fill(cfg)))
    proc = run_tool(config, onnx, int8, '--checkpoint', ckpt)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'ONNX Runtime (fp32, model.onnx):      COCO bbox mAP ' in proc.stdout
    assert ('ONNX Runtime (int8, model_int8.onnx): COCO bbox mAP '
            in proc.stdout)
    assert '; int8: backbone, thin_map, rpn_head, rcnn_fcs' in proc.stdout
    assert 'PyTorch:                              COCO bbox mAP ' in proc.stdout
    found = re.search(r'model.onnx against PyTorch: mAP difference ([\d.]+) '
                      r'points; (\d+) of (\d+) PyTorch detections matched',
                      proc.stdout)
    assert found, proc.stdout
    diff, matched, total = (float(found[1]), int(found[2]), int(found[3]))
    assert diff <= 0.2
    assert total == 400 and matched >= 0.99 * total
    # The int8 graph against PyTorch and against the fp32 graph (how much
    # matches is the learning test's: these scores are near-tied).
    assert 'model_int8.onnx against PyTorch: mAP difference ' in proc.stdout
    assert re.search(r'model_int8.onnx against model.onnx: mAP difference '
                     r'[\d.]+ points; \d+ of 400 fp32 detections matched in '
                     r'int8 \(IoU >= 0.8, same label, score within 0.05\)',
                     proc.stdout), proc.stdout


@pytest.mark.parametrize('option,key,graph,config', [
    ('model.test_cfg.rcnn.score_thr=0.5', 'model.test_cfg.rcnn.score_thr',
     '0.0', '0.5'),
    ('model.data_preprocessor.bgr_to_rgb=False',
     'model.data_preprocessor.bgr_to_rgb', 'true', 'false'),
    ("test_dataloader.dataset.metainfo.classes=[a,b,c,d,e]",
     'test_dataloader.dataset.metainfo.classes[0]', '"circle"', '"a"'),
])
def test_refuses_a_config_that_disagrees_with_the_graph(exported, option,
                                                        key, graph, config):
    """--cfg-options that change what the graph computes with (the graph
    keeps the values it was exported with): refused, with the field, both
    values and what to do, before anything runs."""
    path, _, onnx = exported
    proc = run_tool(path, onnx, '--cfg-options', option)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith(
        f'error: {onnx} was exported with {key} = {graph}, the config has '
        f'{config}'), proc.stderr
    assert 'Export the graph again from this config' in lines[0]
    assert lines[1].startswith('Run again with --debug')
    assert osp.isfile(onnx)


def _map(pattern, stdout):
    found = re.search(pattern + r'\s+COCO bbox mAP ([\d.]+)', stdout)
    assert found, stdout
    return float(found[1])


def test_openvino_gives_onnxruntime_s_map(exported):
    """--backend openvino: the same graph in OpenVINO at f32 (read back),
    the mAP of ONNX Runtime and PyTorch's detections."""
    pytest.importorskip('openvino')
    config, ckpt, onnx = exported
    ort = run_tool(config, onnx)
    assert ort.returncode == 0, ort.stderr[-3000:]
    proc = run_tool(config, onnx, '--checkpoint', ckpt, '--backend',
                    'openvino', '--ov-precision', 'f32')
    assert proc.returncode == 0, proc.stderr[-3000:]
    ov_map = _map(r'OpenVINO f32 \(fp32, model.onnx\):', proc.stdout)
    assert abs(ov_map - _map(r'ONNX Runtime \(fp32, model.onnx\):',
                             ort.stdout)) <= 0.1
    found = re.search(r'model.onnx against PyTorch: mAP difference ([\d.]+) '
                      r'points; (\d+) of (\d+) PyTorch detections matched '
                      r'in OpenVINO \(IoU >= 0.99', proc.stdout)
    assert found, proc.stdout
    assert float(found[1]) <= 0.2
    assert int(found[3]) == 400 and int(found[2]) >= 0.98 * 400


def test_openvino_errors_in_one_line(tmp_path, exported):
    """An IR asked of ONNX Runtime; bf16 on a CPU without it (the backend's
    message); openvino not installed (a stand-in that fails to import)."""
    pytest.importorskip('openvino')
    from shufflenet_det.deploy.openvino import ov_core
    config, _, onnx = exported
    ir = tmp_path / 'model.xml'
    ir.write_text('<net/>')
    cases = [((config, str(ir)), None,
              f'error: {ir} is an OpenVINO IR: run it with --backend '
              'openvino')]
    if 'BF16' not in ov_core().get_property('CPU',
                                            'OPTIMIZATION_CAPABILITIES'):
        cases.append(((config, onnx, '--backend', 'openvino',
                       '--ov-precision', 'bf16'), None,
                      'error: bf16 asked, but this CPU'))
    blocked = tmp_path / 'blocked' / 'openvino'
    blocked.mkdir(parents=True)
    (blocked / '__init__.py').write_text('raise ImportError("blocked")\n')
    cases.append(((config, onnx, '--backend', 'openvino'),
                  str(blocked.parent),
                  'error: openvino is not installed, which the OpenVINO '
                  'backend needs: run make setup'))
    for args, path, message in cases:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [path, os.environ.get('PYTHONPATH', '')])) if path else None
        proc = subprocess.run(
            [sys.executable, 'tools/deployment/eval_onnx.py', *args],
            cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 1, proc.stderr[-3000:]
        lines = proc.stderr.strip().splitlines()
        assert lines[0].startswith(message), proc.stderr
        assert lines[1].startswith('Run again with --debug')
