"""tools/deployment/eval_onnx.py: COCO evaluation of the exported graph in
ONNX Runtime beside PyTorch's on the same test images (a Table 7 cell on a
tiny shapes set, its images resized to 384x288 without keeping their
aspect ratio: the boxes are scaled back to the originals by two factors).

At sizes that are not multiples of 32 the graph clips its proposals to the
padded image, mmdet to the image: a few boxes at the right or bottom border
then differ (the tool's docstring), which is why the sizes here are
multiples of 32 and every detection must match."""
import re
import subprocess
import sys

import pytest
import torch
from deploy_helpers import ROOT, as_batch, decisive_model, table7_config

from shufflenet_det.deploy import export_onnx

pytest.importorskip('onnxruntime')
BASE = table7_config('shufflenetv2', '40m')


def test_onnx_and_pytorch_give_the_same_coco_map(tmp_path, shapes_root,
                                                 shapes_val):
    from mmengine.runner import save_checkpoint
    config = tmp_path / 'shapes.py'
    data_root = f'{shapes_root}/'
    config.write_text(f'''
_base_ = [{BASE!r}]
data_root = {data_root!r}
metainfo = dict(classes=('circle', 'rectangle', 'triangle', 'star', 'cross'))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(384, 288), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor'))
]
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), pipeline=pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
model = dict(roi_head=dict(bbox_head=dict(num_classes=5)))
''')
    bgr, _ = as_batch(shapes_val, (288, 384))
    model = decisive_model(str(config), bgr)
    ckpt, onnx = str(tmp_path / 'model.pth'), str(tmp_path / 'model.onnx')
    save_checkpoint(dict(state_dict=model.state_dict()), ckpt)
    with torch.no_grad():
        export_onnx(model, onnx, (288, 384), dynamic=True)
    proc = subprocess.run(
        [sys.executable, 'tools/deployment/eval_onnx.py', str(config), onnx,
         '--checkpoint', ckpt, '--threads', '1'], cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'ONNX Runtime: COCO bbox mAP ' in proc.stdout
    assert 'PyTorch:      COCO bbox mAP ' in proc.stdout
    found = re.search(r'mAP difference ([\d.]+) points; (\d+) of (\d+) '
                      r'PyTorch detections matched', proc.stdout)
    assert found, proc.stdout
    diff, matched, total = (float(found[1]), int(found[2]), int(found[3]))
    assert diff <= 0.2
    assert total == 400 and matched >= 0.99 * total
