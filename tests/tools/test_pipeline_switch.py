"""A setting written to the dataset during training reaches it under the
project's resumable loops: mmdet's PipelineSwitchHook (the second stage of
RTMDet's and YOLOX's recipes) run by tools/train.py, with the project's
backbone under mmdet's Faster R-CNN."""
import json
import os
import os.path as osp
import subprocess
import sys

from cli_helpers import ROOT

FASTER_RCNN = osp.join(ROOT, 'configs', 'demo',
                       'faster_rcnn_fpn_v2star_shapes.py')

RECORDER = '''
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RecordPipeline(BaseTransform):
    """Appends "<tag> <image>" to ``path`` for every sample it sees."""

    def __init__(self, tag, path):
        self.tag, self.path = tag, path

    def transform(self, results):
        with open(self.path, 'a') as f:
            f.write(f"{self.tag} {results['img_path']}\\n")
        return results
'''


def pipeline(tag, log):
    return [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(160, 128), keep_ratio=True),
        dict(type='RecordPipeline', tag=tag, path=log),
        dict(type='PackDetInputs'),
    ]


def test_pipeline_switch_hook_switches_under_tools_train(tmp_path,
                                                        shapes_root):
    (tmp_path / 'record_pipeline.py').write_text(RECORDER)
    log = str(tmp_path / 'samples.txt')
    data_root = str(shapes_root) + '/'
    config = tmp_path / 'switch.py'
    config.write_text(f'''
_base_ = [{FASTER_RCNN!r}]
custom_imports = dict(imports=['shufflenet_det', 'record_pipeline'],
                      allow_failed_imports=False)
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(data_root={data_root!r},
                 pipeline={pipeline('first', log)!r}))
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=2,
                 val_interval=100)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None
param_scheduler = [dict(type='ConstantLR', factor=1.0)]
custom_hooks = [dict(type='PipelineSwitchHook', switch_epoch=1,
                     switch_pipeline={pipeline('second', log)!r})]
default_hooks = dict(checkpoint=dict(interval=100), logger=dict(interval=1))
randomness = dict(seed=0)
''')
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(
                   [str(tmp_path), os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', str(config),
         '--work-dir', str(tmp_path / 'work')],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'Switch pipeline now!' in proc.stdout + proc.stderr
    with open(log) as f:
        seen = [line.split() for line in f]
    # The training images (those with a box: filter_empty_gt), epoch 1
    # through the first pipeline, epoch 2 through the one the hook set.
    with open(osp.join(data_root, 'annotations', 'instances_train.json')) as f:
        ann = json.load(f)
    with_boxes = {a['image_id'] for a in ann['annotations']}
    n = len(with_boxes)
    assert n >= 4
    assert [t for t, _ in seen] == ['first'] * n + ['second'] * n
    assert sorted(p for _, p in seen[:n]) == sorted(p for _, p in seen[n:])
