"""tools/deployment/eval_onnx.py: COCO evaluation of the exported graph in
ONNX Runtime beside PyTorch's on the same test images (a Table 7 cell on a
tiny shapes set, its images resized to 384x288 without keeping their
aspect ratio: the boxes are scaled back to the originals by two factors),
and of its int8 graph in the same run.

At sizes that are not multiples of 32 the graph clips its proposals to the
padded image, mmdet to the image: a few boxes at the right or bottom border
then differ (the tool's docstring), which is why the sizes here are
multiples of 32 and every detection must match."""
import re
import subprocess
import sys

import pytest
import torch
from deploy_helpers import (ROOT, as_batch, decisive_model, shapes_config,
                            table7_config)

from shufflenet_det.deploy import export_onnx

pytest.importorskip('onnxruntime')
BASE = table7_config('shufflenetv2', '40m')


def test_onnx_and_pytorch_give_the_same_coco_map(tmp_path, shapes_root,
                                                 shapes_val):
    from mmengine.config import Config
    from mmengine.runner import save_checkpoint

    from shufflenet_det.deploy.quantize import (ImageCalibrationReader,
                                                config_fill, quantize_graph,
                                                pipeline_images)
    config = shapes_config(tmp_path / 'shapes.py', shapes_root, BASE)
    bgr, _ = as_batch(shapes_val, (288, 384))
    model = decisive_model(str(config), bgr)
    ckpt, onnx = str(tmp_path / 'model.pth'), str(tmp_path / 'model.onnx')
    save_checkpoint(dict(state_dict=model.state_dict()), ckpt)
    with torch.no_grad():
        export_onnx(model, onnx, (288, 384), dynamic=True)
    cfg = Config.fromfile(config)
    int8 = str(tmp_path / 'model_int8.onnx')
    val = sorted((shapes_root / 'val').iterdir())
    quantize_graph(onnx, int8, ImageCalibrationReader(
        pipeline_images(cfg, [str(p) for p in val]), config_fill(cfg)))
    proc = subprocess.run(
        [sys.executable, 'tools/deployment/eval_onnx.py', config, onnx,
         int8, '--checkpoint', ckpt, '--threads', '1'], cwd=ROOT,
        capture_output=True, text=True, timeout=300)
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
