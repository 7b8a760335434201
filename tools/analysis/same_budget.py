"""Train detectors for the same wall-clock minutes and compare their mAP.

    python tools/analysis/same_budget.py [--minutes 10]
        [--configs configs/demo/lighthead_v2star_shapes.py
                   configs/demo/faster_rcnn_fpn_v2star_shapes.py]
        [--work-dir work_dirs/same_budget] [--json FILE]

Each config is trained in turn, from scratch, by tools/train.py with an
iteration-based loop (the config's data, model and optimizer; lr warmed up
over 50 iterations, then constant) until ``--minutes`` of training time are
spent (TrainTimeBudgetHook; validation and start-up are not counted), then
evaluated once on its val split. The default pair is the embedded demo's
Light-Head R-CNN and mmdet's Faster R-CNN with FPN on the same backbone
(ShuffleNet V2*, 40M level): what a light head buys at equal training
time. Prints a markdown table and writes it as JSON beside the runs.
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
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


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--minutes', type=float, default=10.0,
                   help='training minutes per detector (default: 10)')
    p.add_argument('--configs', nargs='+', default=DEFAULT_CONFIGS)
    p.add_argument('--work-dir', default='work_dirs/same_budget')
    p.add_argument('--json', help='(default: WORK_DIR/same_budget.json)')
    args = p.parse_args(argv)
    if args.minutes <= 0:
        p.error('--minutes must be > 0')
    for cfg in args.configs:
        if not osp.isfile(cfg):
            p.error(f'config not found: {cfg}')
    return args


def _last(pattern, text, cast=float):
    found = re.findall(pattern, text)
    return cast(found[-1]) if found else None


def run_one(config, minutes, work_dir):
    """Train ``config`` for ``minutes``, evaluate; returns a result dict."""
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
    iters = _last(r'stopping after iteration (\d+)', text, int)
    if iters is None:
        iters = _last(r'Iter\(train\) \[\s*(\d+)/', text, int)
    ap, detections = read_map(text, config, log_path)
    return dict(config=config, minutes=minutes, iterations=iters,
                seconds_per_iter=minutes * 60 / iters if iters else None,
                wall_minutes=wall / 60, bbox_mAP=ap[0], bbox_mAP_50=ap[1],
                bbox_mAP_75=ap[2], bbox_mAP_s=ap[3], bbox_mAP_m=ap[4],
                bbox_mAP_l=ap[5], detections=detections, log=log_path)


# mmdet's CocoMetric logs this, and no mAP, when a model detected nothing
# on the whole val set (e.g. a detector still in its warm-up).
NO_DETECTIONS = 'The testing results of the whole dataset is empty'


def read_map(text, config, log_path):
    """The six COCO APs of the last evaluation in a training log, and
    whether there were detections; a model that detected nothing scores
    0."""
    copypaste = re.findall(r'bbox_mAP_copypaste: ([-\d. ]+)', text)
    empty = text.rfind(NO_DETECTIONS)
    if copypaste and text.rfind('bbox_mAP_copypaste') > empty:
        return [float(v) for v in copypaste[-1].split()], True
    if empty >= 0:
        return [0.0] * 6, False
    raise RuntimeError(f'{config}: no bbox_mAP_copypaste line in '
                       f'{log_path}')


def table(results):
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


def main(argv=None):
    args = parse_args(argv)
    results = []
    for config in args.configs:
        print(f'training {config} for {args.minutes:g} min ...', flush=True)
        try:
            results.append(run_one(config, args.minutes, args.work_dir))
        except RuntimeError as e:
            print(f'error: {e}', file=sys.stderr)
            return 1
        r = results[-1]
        print(f'  {r["iterations"]} iterations, mAP '
              f'{100 * r["bbox_mAP"]:.1f}'
              + ('' if r['detections'] else ' (no detections on the val '
                 'set)'), flush=True)
    out = args.json or osp.join(args.work_dir, 'same_budget.json')
    with open(out, 'w') as f:
        json.dump(dict(minutes=args.minutes, torch_threads=os.environ.get(
            'OMP_NUM_THREADS'), results=results), f, indent=2)
    print(table(results))
    print(f'JSON: {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
