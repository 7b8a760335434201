"""The GPU half of Table 7 in one run (``tools/gpu_table7.py``): the CUDA
pre-flight, every cell and the peer timed in fp32 and fp16, one training
step of one cell on the device, and a device-vs-CPU detection parity
check; table7.json, table7.md and table7.png in the output directory.

Order, so that a run cut off keeps what matters most: the pre-flight, then
for each precision the cells level by level (the families of a level timed
round-robin, :func:`.timing.measure`) and the peer, then the two checks.
The JSON and the Markdown table are rewritten as soon as each level's cells
(and the peer) are measured, each phase with its status and seconds, so a
partial run leaves a partial table; ``complete`` is true only at the end.
A phase that fails is recorded with its error and the next one runs.
"""
import copy
import json
import math
import os
import os.path as osp
import time
import traceback
from dataclasses import dataclass, field

import torch

from ..apis.detector import build_detector
from ..benchmark.peer import PEER, build_peer
from ..benchmark.timing import describe_device, environment, time_interleaved
from ..deploy.parity import match_detections
from ..utils.inputs import mmdet_batch, synthetic_images
from .cells import FAMILIES, LEVELS
from .configs import WORK_DIRS, cell_config
from .timing import TimingSettings, markdown, measure, plot, timing_device

#: ``shufflenetv2_140m`` -> ('shufflenetv2', '140M')
CELL_NAMES = {f'{f}_{lv.lower()}': (f, lv) for f in FAMILIES for lv in LEVELS}


@dataclass
class GPUSettings:
    """The run (``tools/gpu_table7.py``'s options). After construction
    ``iters`` and ``warmup`` hold the counts used (``quick``: 1 and 1; else
    20 and 5 on CUDA, 3 and 1 on a CPU), ``groups`` the cells as (level,
    families) in the paper's order (``cells`` by name, else ``families`` x
    ``levels``), and ``families``/``levels`` those of ``groups``."""
    out_dir: str
    device: str = field(default_factory=lambda: 'cuda' if
                        torch.cuda.is_available() else 'cpu')
    precisions: list = field(default_factory=lambda: ['fp32', 'fp16'])
    families: list = field(default_factory=lambda: list(FAMILIES))
    levels: list = field(default_factory=lambda: list(LEVELS))
    cells: list = None
    batch_size: int = 4
    shape: tuple = (800, 1200)
    iters: int = None
    warmup: int = None
    quick: bool = False
    channels_last: bool = False
    peer: bool = True
    checks: bool = True
    check_cell: str = 'shufflenetv2_40m'
    parity_images: int = 2
    work_dirs: str = WORK_DIRS
    groups: list = field(init=False)

    def __post_init__(self):
        on_gpu = self.device == 'cuda'
        if self.quick:
            self.iters, self.warmup = 1, 1
        self.iters = self.iters or (20 if on_gpu else 3)
        self.warmup = self.warmup if self.warmup is not None else (
            5 if on_gpu else 1)
        cells = ([CELL_NAMES[c] for c in self.cells] if self.cells else
                 [(f, lv) for f in self.families for lv in self.levels])
        # Level by level, families in the paper's row order.
        groups = [(lv, [f for f in FAMILIES if (f, lv) in cells])
                  for lv in LEVELS]
        self.groups = [(lv, fams) for lv, fams in groups if fams]
        self.families = [f for f in FAMILIES
                         if any(f in fams for _, fams in self.groups)]
        self.levels = [lv for lv, _ in self.groups]


class Results:
    """What the run has measured so far, rewritten to disk after each
    step (write-then-rename: a run killed mid-write keeps the last
    complete file)."""

    def __init__(self, settings, env):
        self.settings, self.env = settings, env
        self.start = time.time()
        self.rows, self.peer, self.checks, self.phases = [], [], {}, []
        self.complete = False
        os.makedirs(settings.out_dir, exist_ok=True)
        self.json_path = osp.join(settings.out_dir, 'table7.json')
        self.md_path = osp.join(settings.out_dir, 'table7.md')
        self.png_path = osp.join(settings.out_dir, 'table7.png')

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
        s = self.settings
        self._write(self.json_path, json.dumps(dict(
            environment=self.env, settings=dict(
                precisions=s.precisions, cells=[
                    f'{f}_{lv.lower()}' for lv, fams in s.groups
                    for f in fams],
                batch_size=s.batch_size, shape=s.shape, iters=s.iters,
                warmup=s.warmup, quick=s.quick,
                channels_last=s.channels_last,
                cudnn_benchmark=torch.backends.cudnn.benchmark),
            complete=self.complete, wall_s=self.elapsed(),
            phases=self.phases, rows=self.rows, peer=self.peer,
            checks=self.checks), indent=2))
        if self.rows:
            self._write(self.md_path, self.markdown())

    def markdown(self):
        text = markdown(self.rows, self.settings, self.env)
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


def preflight(settings, results):
    """Beyond check_device's NMS: RoIAlign (mmcv) and PSRoIAlign
    (torchvision) on the device, the ops the detectors call."""
    from mmcv.ops import RoIAlign
    from torchvision.ops import ps_roi_align
    device = torch.device(settings.device)
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


def time_level(settings, results, precision, level, families):
    """The cells of one level, as tools/table7.py times them."""
    s = settings
    results.rows += measure(TimingSettings(
        families=families, levels=[level], precisions=s.precisions,
        device=s.device, batch_size=s.batch_size, shape=s.shape,
        iters=s.iters, warmup=s.warmup, quick=s.quick,
        channels_last=s.channels_last, work_dirs=s.work_dirs), precision)


def time_peer(settings, results, precision):
    """torchvision's detector (:data:`~shufflenet_det.benchmark.peer.PEER`)
    on the cells' input, host images to detections."""
    device = torch.device(settings.device)
    torch.manual_seed(0)
    peer = build_peer(settings.shape).to(device)
    images = synthetic_images(settings.batch_size, settings.shape)

    def run():
        with torch.autocast(device.type, dtype=torch.float16,
                            enabled=precision == 'fp16'):
            # The host-to-device copy is timed, as for the cells.
            return peer([img.to(device).float().div_(255) for img in images])

    res = time_interleaved([run], device, settings.iters, settings.warmup,
                           names=[PEER])[0]
    speed = settings.batch_size / res['median_s']
    results.peer.append(dict(
        name=PEER, precision=precision, images_per_s=speed,
        median_s=res['median_s'], iqr_s=res['iqr_s'], noisy=res['noisy'],
        peak_mem_mb=res['peak_mem_mb']))
    print(f'{"peer":<36} {precision} {speed:8.2f} images/s', flush=True)


def train_batch(images, seed=0):
    """``images`` with a few random ground-truth boxes each, as the batch
    ``model.train_step`` takes."""
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


def train_step(settings, results):
    """One SGD step of the check cell on the device: the losses are finite
    and the weights move."""
    from mmengine.optim import OptimWrapper
    family, level = CELL_NAMES[settings.check_cell]
    device = torch.device(settings.device)
    model = build_detector(cell_config(family, level)).to(device)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    optim = OptimWrapper(torch.optim.SGD(params, lr=0.01, momentum=0.9,
                                         weight_decay=1e-4))
    batch = train_batch(synthetic_images(2, settings.shape, seed=2))
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
        cell=settings.check_cell, device=settings.device, ok=ok,
        seconds=seconds, losses=losses, params_moved=moved,
        params_trained=len(params),
        summary=f'{settings.check_cell}, one SGD step on {settings.device} '
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


def _as_padded(instances):
    """One image's detections as match_detections takes them: (1, K, 5)
    boxes and scores, best first, and (1, K) labels."""
    order = torch.argsort(instances.scores, descending=True)
    dets = torch.cat([instances.bboxes[order],
                      instances.scores[order, None]], 1)
    return dets[None].numpy(), instances.labels[order][None].numpy()


def parity(settings, results):
    """The check cell's detections on the device against the CPU's, fp32,
    TF32 off, on a few images of the benchmark's shape: a detection matches
    one of the other side with the same label, IoU >= 0.9 and a score
    within 0.01; passed when 95% do."""
    family, level = CELL_NAMES[settings.check_cell]
    device = torch.device(settings.device)
    cfg = cell_config(family, level)
    # Every image gives its 100 best boxes, however small it is.
    model = build_detector(cfg, cfg_options={
        'model.test_cfg.rcnn.score_thr': 0.0})
    parity_weights(model)
    on_device = copy.deepcopy(model).to(device)
    batch = mmdet_batch(synthetic_images(settings.parity_images,
                                         settings.shape, seed=3))
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
        match = match_detections(*_as_padded(r), *_as_padded(o),
                                 iou_thr=0.9, score_tol=0.01)
        per_image.append(dict(cpu=len(r.bboxes), device=len(o.bboxes),
                              matched=match['matched'],
                              max_score_diff=match['max_score_diff']))
    total = sum(max(p['cpu'], p['device']) for p in per_image)
    matched = sum(p['matched'] for p in per_image)
    fraction = matched / total if total else 0.0
    ok = total > 0 and fraction >= 0.95
    results.checks['parity'] = dict(
        cell=settings.check_cell, device=settings.device, ok=ok,
        matched_fraction=fraction, images=per_image,
        summary=f'{settings.check_cell}, {settings.device} vs CPU on '
        f'{len(per_image)} images: {matched}/{total} detections match '
        '(label, IoU >= 0.9, score within 0.01): '
        f'{"passed" if ok else "FAILED"}.')
    results.say(results.checks['parity']['summary'])
    if not ok:
        raise RuntimeError(results.checks['parity']['summary'])


def run(settings):
    """The whole run (module docstring); returns the exit status: 1 if a
    phase failed, else 0."""
    s = settings
    device = timing_device(s.device, s.precisions, s.quick)
    results = Results(s, environment(device))
    ncells = sum(len(f) for _, f in s.groups)
    results.say(f'{ncells} cells x {len(s.precisions)} precisions'
                f'{" + the peer" if s.peer else ""}, batch '
                f'{s.batch_size}, {s.shape[0]}x{s.shape[1]}, '
                f'{s.warmup} warm-up + {s.iters} timed runs each; '
                f'writing to {s.out_dir}')
    results.phase('pre-flight', lambda: preflight(s, results))
    for precision in s.precisions:
        for level, families in s.groups:
            results.phase(f'{precision} {level}', lambda: time_level(
                s, results, precision, level, families))
        if s.peer:
            results.phase(f'{precision} peer',
                          lambda: time_peer(s, results, precision))
        if any(r['precision'] == precision for r in results.rows):
            try:  # the figure is a view of the JSON: never lose a run to it
                plot(results.rows, results.png_path)
            except Exception as e:  # noqa: BLE001
                results.say(f'figure not drawn: {type(e).__name__}: {e}')
    if s.checks:
        results.phase('training step', lambda: train_step(s, results))
        results.phase('parity', lambda: parity(s, results))
    results.complete = True
    results.save()
    failed = [p['name'] for p in results.phases if p['status'] != 'ok']
    results.say(f'done: {results.json_path}, {results.md_path}, '
                f'{results.png_path}'
                + (f'; FAILED: {", ".join(failed)}' if failed else ''))
    return 1 if failed else 0
