"""The GPU half of Table 7 in one run: the CUDA pre-flight, every cell and
the peer timed in fp32 and fp16, one training step of one cell on the
device, and a device-vs-CPU detection parity check; table7.json, table7.md
and table7.png in the output directory. tools/gpu_table7.sh runs the offline
set-up first and then this (docs/gpu.md).

    python tools/gpu_table7.py --out-dir work_dirs/table7_gpu
    python tools/gpu_table7.py --out-dir OUT --cells shufflenetv2_140m \
        mobilenetv2_140m --precisions fp32        # a cut, for less time
    python tools/gpu_table7.py --out-dir OUT --device cpu --quick  # the test

Order, so that a run cut off keeps what matters most: the pre-flight, then
for each precision the cells level by level (the families of a level timed
round-robin, as tools/table7.py does) and the peer, then the two checks.
The JSON and the Markdown table are rewritten as soon as each level's cells
(and the peer) are measured, each phase with its status and seconds, so a
partial run leaves a partial table; ``complete`` is true only at the end.
A phase that fails is recorded with its error and the next one runs; the
exit status is 1 if any failed.
"""
import argparse
import copy
import importlib.util
import json
import math
import os
import os.path as osp
import sys
import time
import traceback

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from shufflenet_det import table7  # noqa: E402
from shufflenet_det.apis.detector import build_detector  # noqa: E402
from shufflenet_det.benchmark.peer import PEER, build_peer  # noqa: E402
from shufflenet_det.benchmark.timing import (
    describe_device,
    environment,
    time_interleaved,
)
from shufflenet_det.utils.inputs import mmdet_batch, synthetic_images  # noqa: E402


def _load_tool(name, path):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The table's own tool (its cell timing, Markdown and figure) and the
# benchmark's peer, reused rather than copied.
table7_tool = _load_tool('table7_tool', 'tools/table7.py')

CELL_NAMES = {f'{f}_{lv.lower()}': (f, lv) for f in table7.FAMILIES
              for lv in table7.LEVELS}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out-dir', required=True,
                   help='table7.json, table7.md and table7.png go here')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available()
                   else 'cpu', choices=['cuda', 'cpu'])
    p.add_argument('--precisions', nargs='+', choices=['fp32', 'fp16'],
                   default=['fp32', 'fp16'])
    p.add_argument('--families', nargs='+', default=list(table7.FAMILIES),
                   choices=table7.FAMILIES)
    p.add_argument('--levels', nargs='+', default=list(table7.LEVELS),
                   choices=table7.LEVELS)
    p.add_argument('--cells', nargs='+', choices=sorted(CELL_NAMES),
                   metavar='FAMILY_LEVEL',
                   help='only these cells, e.g. shufflenetv2_140m '
                   '(instead of --families x --levels)')
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--shape', type=int, nargs=2, default=[800, 1200],
                   metavar=('H', 'W'))
    p.add_argument('--iters', type=int, default=None,
                   help='timed runs per cell (default 20 on CUDA, 3 on CPU)')
    p.add_argument('--warmup', type=int, default=None,
                   help='untimed runs per cell first (default 5 on CUDA, '
                   '1 on CPU; cuDNN picks its algorithms in the first)')
    p.add_argument('--quick', action='store_true',
                   help='one warm-up and one timed run per cell: checks the '
                   'command (on a CPU, fp16 included)')
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--no-peer', dest='peer', action='store_false',
                   help='do not time torchvision\'s detector')
    p.add_argument('--no-checks', dest='checks', action='store_false',
                   help='skip the training step and the parity check')
    p.add_argument('--check-cell', default='shufflenetv2_40m',
                   choices=sorted(CELL_NAMES),
                   help='the cell of the training step and the parity check')
    p.add_argument('--parity-images', type=int, default=2)
    p.add_argument('--work-dirs', default=osp.join(ROOT, 'work_dirs'),
                   help='where trained cells\' logs are (their mmAP)')
    args = p.parse_args(argv)
    on_gpu = args.device == 'cuda'
    if args.quick:
        args.iters, args.warmup = 1, 1
    args.iters = args.iters or (20 if on_gpu else 3)
    args.warmup = args.warmup if args.warmup is not None else (
        5 if on_gpu else 1)
    cells = ([CELL_NAMES[c] for c in args.cells] if args.cells else
             [(f, lv) for f in args.families for lv in args.levels])
    # Level by level, families in the paper's row order.
    args.groups = [(lv, [f for f in table7.FAMILIES if (f, lv) in cells])
                   for lv in table7.LEVELS]
    args.groups = [(lv, fams) for lv, fams in args.groups if fams]
    args.families = [f for f in table7.FAMILIES
                     if any(f in fams for _, fams in args.groups)]
    args.levels = [lv for lv, _ in args.groups]
    return args


class Results:
    """What the run has measured so far, rewritten to disk after each
    step (write-then-rename: a run killed mid-write keeps the last
    complete file)."""

    def __init__(self, args, env):
        self.args, self.env = args, env
        self.start = time.time()
        self.rows, self.peer, self.checks, self.phases = [], [], {}, []
        self.complete = False
        os.makedirs(args.out_dir, exist_ok=True)
        self.json_path = osp.join(args.out_dir, 'table7.json')
        self.md_path = osp.join(args.out_dir, 'table7.md')
        self.png_path = osp.join(args.out_dir, 'table7.png')

    def elapsed(self):
        return time.time() - self.start

    def say(self, msg):
        m, s = divmod(int(self.elapsed()), 60)
        print(f'[gpu_table7 {m}:{s:02d}] {msg}', flush=True)

    def _write(self, path, text):
        tmp = path + '.partial'
        with open(tmp, 'w') as f:
            f.write(text)
        os.replace(tmp, path)

    def save(self):
        a = self.args
        self._write(self.json_path, json.dumps(dict(
            environment=self.env, settings=dict(
                precisions=a.precisions, cells=[
                    f'{f}_{lv.lower()}' for lv, fams in a.groups
                    for f in fams],
                batch_size=a.batch_size, shape=a.shape, iters=a.iters,
                warmup=a.warmup, quick=a.quick,
                channels_last=a.channels_last,
                cudnn_benchmark=torch.backends.cudnn.benchmark),
            complete=self.complete, wall_s=self.elapsed(),
            phases=self.phases, rows=self.rows, peer=self.peer,
            checks=self.checks), indent=2))
        if self.rows:
            self._write(self.md_path, self.markdown())

    def markdown(self):
        text = table7_tool.markdown(self.rows, self.args, self.env)
        lines = [text.rstrip(), '']
        for p in self.peer:
            lines.append(f'Peer ({p["precision"]}): {p["name"]}, '
                         f'{p["images_per_s"]:.1f} images/s.')
        for name, c in self.checks.items():
            lines.append(f'Check {name}: {c["summary"]}')
        failed = [p for p in self.phases if p['status'] == 'failed']
        for p in failed:
            lines.append(f'Phase {p["name"]} failed: {p["error"]}')
        if not self.complete:
            lines.append('Partial: the run stopped or is still running.')
        return '\n'.join(lines) + '\n'

    def phase(self, name, fn):
        """Run one phase, record its status and time, save."""
        self.say(f'{name} ...')
        t0 = time.time()
        record = dict(name=name, status='running')
        self.phases.append(record)
        try:
            fn()
            record['status'] = 'ok'
        except Exception as e:  # noqa: BLE001  (recorded; the next runs)
            traceback.print_exc()
            first = (str(e).strip().splitlines() or [''])[0]
            record.update(status='failed', error=f'{type(e).__name__}: '
                          f'{first}'[:300])
        record['seconds'] = round(time.time() - t0, 2)
        self.save()
        self.say(f'{name}: {record["status"]} in {record["seconds"]:.1f} s')
        return record['status'] == 'ok'


def preflight(args, results):
    """Beyond check_device's NMS: RoIAlign (mmcv) and PSRoIAlign
    (torchvision) on the device, the ops the detectors call."""
    from mmcv.ops import RoIAlign
    from torchvision.ops import ps_roi_align
    device = torch.device(args.device)
    feat = torch.rand(1, 490, 16, 16, device=device)
    rois = torch.tensor([[0., 0., 0., 8., 8.]], device=device)
    assert RoIAlign((7, 7), 1.0, 2)(feat, rois).shape == (1, 490, 7, 7)
    assert ps_roi_align(feat, rois, 7, 1.0, 2).shape == (1, 10, 7, 7)
    env = results.env
    results.say(f'device: {describe_device(env)}; mmcv {env["mmcv"]} '
                f'(CUDA ops: {env["mmcv_cuda_ops"]}), cuDNN benchmark '
                f'{"on" if torch.backends.cudnn.benchmark else "off"}')
    if device.type == 'cuda':
        results.say('compute capability %d.%d, %.0f GiB' % (
            *torch.cuda.get_device_capability(device),
            torch.cuda.get_device_properties(device).total_memory / 2**30))


def time_level(args, results, precision, level, families):
    ns = copy.copy(args)
    ns.families, ns.levels = families, [level]
    results.rows += table7_tool.measure(ns, precision)


def time_peer(args, results, precision):
    device = torch.device(args.device)
    torch.manual_seed(0)
    peer = build_peer(args.shape).to(device)
    images = synthetic_images(args.batch_size, args.shape)

    def run():
        with torch.autocast(device.type, dtype=torch.float16,
                            enabled=precision == 'fp16'):
            # The host-to-device copy is timed, as for the cells.
            return peer([img.to(device).float().div_(255) for img in images])

    res = time_interleaved([run], device, args.iters, args.warmup,
                           names=[PEER])[0]
    speed = args.batch_size / res['median_s']
    results.peer.append(dict(
        name=PEER, precision=precision, images_per_s=speed,
        median_s=res['median_s'], iqr_s=res['iqr_s'], noisy=res['noisy'],
        peak_mem_mb=res['peak_mem_mb']))
    print(f'{"peer":<36} {precision} {speed:8.2f} images/s', flush=True)


def train_batch(images, seed=0):
    """``images`` with a few random ground-truth boxes each, as the batch
    ``model.train_step`` takes."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(seed)
    batch = mmdet_batch(images)
    for sample, img in zip(batch['data_samples'], images):
        h, w = img.shape[-2:]
        xy = torch.rand(3, 2, generator=gen) * torch.tensor([w, h]) * 0.6
        wh = (0.1 + 0.3 * torch.rand(3, 2, generator=gen)) * torch.tensor(
            [w, h])
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], 1),
            labels=torch.randint(0, 80, (3,), generator=gen))
    return batch


def train_step(args, results):
    """One SGD step of the check cell on the device: the losses are finite
    and the weights move."""
    from mmengine.optim import OptimWrapper
    family, level = CELL_NAMES[args.check_cell]
    device = torch.device(args.device)
    model = build_detector(table7_tool.cell_config(family, level)).to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    optim = OptimWrapper(torch.optim.SGD(params, lr=0.01, momentum=0.9,
                                         weight_decay=1e-4))
    batch = train_batch(synthetic_images(2, args.shape, seed=2))
    t0 = time.time()
    log_vars = model.train_step(batch, optim)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    seconds = time.time() - t0
    losses = {k: float(v.detach() if torch.is_tensor(v) else v)
              for k, v in log_vars.items()}
    moved = sum(not torch.equal(b, p.detach()) for b, p in zip(before, params))
    ok = all(math.isfinite(v) for v in losses.values()) and moved > 0
    results.checks['train_step'] = dict(
        cell=args.check_cell, device=args.device, ok=ok, seconds=seconds,
        losses=losses, params_moved=moved, params_trained=len(params),
        summary=f'{args.check_cell}, one SGD step on {args.device} '
        f'(2 images), loss {losses.get("loss", float("nan")):.3f}, '
        f'{moved}/{len(params)} tensors updated: '
        f'{"passed" if ok else "FAILED"}.')
    results.say(results.checks['train_step']['summary'])
    if not ok:
        raise RuntimeError(f'training step: losses {losses}, {moved} '
                           'parameter tensors moved')


def parity_weights(model, seed=0, head_scale=0.03):
    """Redraw the weights for the parity check: He-normal for every
    convolution and linear layer (biases zero), the heads' last layers
    scaled by ``head_scale``. With the model's own init the activations
    vanish (the classifiers see inputs of ~1e-6), every score is 1/81 and
    which boxes survive NMS and the top 100 is decided by rounding; with
    He init alone the scores saturate at 1.0, the same ties. Scaled so, the
    scores spread (measured on 2 synthetic 800x1200 images, CPU:
    0.28-0.76) and all 200 detections came out the same (label, IoU >=
    0.9, score within 0.01) under a +-1e-5 relative change of every
    weight."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity='relu')
                if m.bias is not None:
                    m.bias.zero_()
        head = model.roi_head.bbox_head
        for layer in (model.rpn_head.rpn_cls, model.rpn_head.rpn_reg,
                      head.fc_cls, head.fc_reg):
            layer.weight.mul_(head_scale)


def match_detections(ref, other, iou_thr=0.9, score_tol=0.01):
    """Greedy one-to-one match of two images' detections: same label,
    IoU >= ``iou_thr``, scores within ``score_tol``. Returns (matched,
    largest score difference among the matched)."""
    from torchvision.ops import box_iou
    if len(ref.bboxes) == 0 or len(other.bboxes) == 0:
        return 0, 0.0
    iou = box_iou(ref.bboxes, other.bboxes)
    same = ref.labels[:, None] == other.labels[None, :]
    close = (ref.scores[:, None] - other.scores[None, :]).abs() <= score_tol
    iou = torch.where(same & close & (iou >= iou_thr), iou, -1.0)
    matched, worst = 0, 0.0
    for i in torch.argsort(ref.scores, descending=True).tolist():
        j = int(iou[i].argmax())
        if iou[i, j] < 0:
            continue
        matched += 1
        worst = max(worst, abs(float(ref.scores[i] - other.scores[j])))
        iou[:, j] = -1.0
    return matched, worst


def parity(args, results):
    """The check cell's detections on the device against the CPU's, fp32,
    TF32 off, on a few images of the benchmark's shape."""
    family, level = CELL_NAMES[args.check_cell]
    device = torch.device(args.device)
    cfg = table7_tool.cell_config(family, level)
    # Every image gives its 100 best boxes, however small it is.
    model = build_detector(cfg, cfg_options={
        'model.test_cfg.rcnn.score_thr': 0.0})
    parity_weights(model)
    on_device = copy.deepcopy(model).to(device)
    batch = mmdet_batch(synthetic_images(args.parity_images, args.shape,
                                         seed=3))
    tf32 = (torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.inference_mode():
            ref = model.test_step(batch)
            out = on_device.test_step(batch)
    finally:
        (torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = tf32
    per_image = []
    for r, o in zip(ref, out):
        r, o = r.pred_instances.cpu(), o.pred_instances.cpu()
        matched, worst = match_detections(r, o)
        per_image.append(dict(cpu=len(r.bboxes), device=len(o.bboxes),
                              matched=matched, max_score_diff=worst))
    total = sum(max(p['cpu'], p['device']) for p in per_image)
    matched = sum(p['matched'] for p in per_image)
    fraction = matched / total if total else 0.0
    ok = total > 0 and fraction >= 0.95
    results.checks['parity'] = dict(
        cell=args.check_cell, device=args.device, ok=ok,
        matched_fraction=fraction, images=per_image,
        summary=f'{args.check_cell}, {args.device} vs CPU on '
        f'{len(per_image)} images: {matched}/{total} detections match '
        '(label, IoU >= 0.9, score within 0.01): '
        f'{"passed" if ok else "FAILED"}.')
    results.say(results.checks['parity']['summary'])
    if not ok:
        raise RuntimeError(results.checks['parity']['summary'])


def main(argv=None):
    args = parse_args(argv)
    device = table7_tool.timing_device(args)
    results = Results(args, environment(device))
    ncells = sum(len(f) for _, f in args.groups)
    results.say(f'{ncells} cells x {len(args.precisions)} precisions'
                f'{" + the peer" if args.peer else ""}, batch '
                f'{args.batch_size}, {args.shape[0]}x{args.shape[1]}, '
                f'{args.warmup} warm-up + {args.iters} timed runs each; '
                f'writing to {args.out_dir}')
    results.phase('pre-flight', lambda: preflight(args, results))
    for precision in args.precisions:
        for level, families in args.groups:
            results.phase(f'{precision} {level}', lambda: time_level(
                args, results, precision, level, families))
        if args.peer:
            results.phase(f'{precision} peer',
                          lambda: time_peer(args, results, precision))
        if any(r['precision'] == precision for r in results.rows):
            try:  # the figure is a view of the JSON: never lose a run to it
                table7_tool.plot(results.rows, results.png_path)
            except Exception as e:  # noqa: BLE001
                results.say(f'figure not drawn: {type(e).__name__}: {e}')
    if args.checks:
        results.phase('training step', lambda: train_step(args, results))
        results.phase('parity', lambda: parity(args, results))
    results.complete = True
    results.save()
    failed = [p['name'] for p in results.phases if p['status'] != 'ok']
    results.say(f'done: {results.json_path}, {results.md_path}, '
                f'{results.png_path}'
                + (f'; FAILED: {", ".join(failed)}' if failed else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
