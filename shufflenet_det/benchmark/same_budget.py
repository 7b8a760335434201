"""Detectors trained for the same wall-clock minutes, then evaluated
(``tools/analysis/same_budget.py``).

Each config is trained in turn, from scratch, by ``tools/train.py`` (in a
subprocess: the user's own command, its log kept) with an iteration-based
loop (the config's data, model and optimizer; lr warmed up over 50
iterations, then constant) until the minutes of training time are spent
(:class:`~shufflenet_det.engine.TrainTimeBudgetHook`; validation and
start-up are not counted), then evaluated once on its val split.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import time

from ..utils.logs import last_coco_bbox, last_match
from ..utils.paths import REPO_ROOT as REPO

DEFAULT_CONFIGS = ['configs/demo/lighthead_v2star_shapes.py',
                   'configs/demo/faster_rcnn_fpn_v2star_shapes.py']

BUDGET_CONFIG = '''_base_ = [{base!r}]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                 max_iters=10**7, val_interval=10**8)
train_dataloader = dict(
    batch_sampler=None, sampler=dict(type='InfiniteSampler', shuffle=True))
param_scheduler = [dict(type='LinearLR', start_factor=0.05, by_epoch=False,
                        begin=0, end=50)]
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=10**8, save_last=True,
                    max_keep_ckpts=1),
    logger=dict(interval=20))
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='TrainTimeBudgetHook', minutes={minutes})]
randomness = dict(seed=0)
'''


def run_one(config, minutes, work_dir):
    """Train ``config`` for ``minutes``, evaluate; returns a result dict.
    Raises RuntimeError naming the log when the training fails."""
    name = osp.splitext(osp.basename(config))[0]
    wd = osp.join(work_dir, name)
    os.makedirs(wd, exist_ok=True)
    derived = osp.join(wd, f'{name}_budget.py')
    with open(derived, 'w') as f:
        f.write(BUDGET_CONFIG.format(base=osp.abspath(config),
                                     minutes=minutes))
    log_path = osp.join(wd, 'train_and_val.log')
    start = time.time()
    with open(log_path, 'w') as log:
        rc = subprocess.run(
            [sys.executable, osp.join(REPO, 'tools', 'train.py'), derived,
             '--work-dir', wd], stdout=log, stderr=subprocess.STDOUT,
            cwd=REPO).returncode
    wall = time.time() - start
    with open(log_path) as f:
        text = f.read()
    if rc != 0:
        raise RuntimeError(f'{config}: training failed (exit {rc}); see '
                           f'{log_path}')
    # TrainTimeBudgetHook's last line, else the last progress line.
    iters = last_match(r'stopping after iteration (\d+)', text, int)
    if iters is None:
        iters = last_match(r'Iter\(train\) \[\s*(\d+)/', text, int)
    ap, detections = read_map(text, config, log_path)
    return dict(config=config, minutes=minutes, iterations=iters,
                seconds_per_iter=minutes * 60 / iters if iters else None,
                wall_minutes=wall / 60, bbox_mAP=ap[0], bbox_mAP_50=ap[1],
                bbox_mAP_75=ap[2], bbox_mAP_s=ap[3], bbox_mAP_m=ap[4],
                bbox_mAP_l=ap[5], detections=detections, log=log_path)


def read_map(text, config, log_path):
    """The six COCO APs of the last evaluation in a training log, and
    whether there were detections; a model that detected nothing scores
    0 (:func:`~shufflenet_det.utils.logs.last_coco_bbox`). A log with no
    evaluation is a RuntimeError naming ``log_path``."""
    found = last_coco_bbox(text)
    if found is None:
        raise RuntimeError(f'{config}: no bbox_mAP_copypaste line in '
                           f'{log_path}')
    return found


def table(results):
    """The results as a Markdown table, one detector a row."""
    lines = ['| detector | training minutes | iterations | s / iter | '
             'mAP | AP50 | AP75 |', '|---|---|---|---|---|---|---|']
    for r in results:
        none = '' if r.get('detections', True) else ' (no detections)'
        lines.append(
            f"| {osp.basename(r['config'])} | {r['minutes']:g} | "
            f"{r['iterations']} | {r['seconds_per_iter']:.2f} | "
            f"{100 * r['bbox_mAP']:.1f}{none} | "
            f"{100 * r['bbox_mAP_50']:.1f} | {100 * r['bbox_mAP_75']:.1f} |")
    return '\n'.join(lines)


def compare(configs, minutes, work_dir, json_path=None):
    """Train and evaluate every config in turn (progress printed), write
    the results as JSON (default ``work_dir/same_budget.json``), print the
    table. Returns 0, or 1 after the first failure (its one line on
    stderr)."""
    results = []
    for config in configs:
        print(f'training {config} for {minutes:g} min ...', flush=True)
        try:
            results.append(run_one(config, minutes, work_dir))
        except RuntimeError as e:
            print(f'error: {e}', file=sys.stderr)
            return 1
        r = results[-1]
        print(f'  {r["iterations"]} iterations, mAP '
              f'{100 * r["bbox_mAP"]:.1f}'
              + ('' if r['detections'] else ' (no detections on the val '
                 'set)'), flush=True)
    out = json_path or osp.join(work_dir, 'same_budget.json')
    with open(out, 'w') as f:
        json.dump(dict(minutes=minutes, torch_threads=os.environ.get(
            'OMP_NUM_THREADS'), results=results), f, indent=2)
    print(table(results))
    print(f'JSON: {out}')
    return 0
