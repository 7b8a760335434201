"""The mini Table 7 on the embedded data: for each cell of a level, the
COCO road in miniature (``tools/table7.py --embedded``; the cells are then
timed as every Table 7 cell is, :mod:`.timing`).

1. data: a detection set where colour does not give the class
   (data/shapes_rc) and, as ImageNet is not COCO, another set to pretrain
   on (data/shapes_rc_pre, seed 1), cut into crops with a held-out split;
2. pretrain: the cell's backbone classifies the crops
   (configs/table7/embedded/pretrain_crops.py, with the cell's backbone and
   its detection config's input), by tools/pretrain.py; top-1 on the
   held-out crops;
3. fine-tune: the cell's own Table 7 config with only the data, classes,
   image scale, schedule and the linear lr scaling changed
   (configs/table7/embedded/finetune_shapes.py), by tools/train.py; COCO
   mAP on the detection set's val split.

The steps run the user's own commands (tools/pretrain.py, tools/train.py)
in subprocesses, each logged. Every step writes into its own work_dir under
OUT and is skipped when finished; a step that was cut off resumes from its
last checkpoint (``--resume``). The configs run are written next to their
logs (``OUT/<step>_<cell>.py``): ``python tools/train.py
OUT/finetune_<cell>.py`` repeats one by hand.
"""
import os
import os.path as osp
import subprocess
import sys
import threading
import time

from mmengine.config import Config

from ..utils.logs import last_logged, train_progress
from .cells import DISPLAY_NAMES, cell
from .configs import ROOT, cell_config, cell_name

PRETRAIN_CONFIG = osp.join(ROOT, 'configs', 'table7', 'embedded',
                           'pretrain_crops.py')
FINETUNE_CONFIG = osp.join(ROOT, 'configs', 'table7', 'embedded',
                           'finetune_shapes.py')
#: make demo's set (600 + 100 images, objects of 32 px and up, at most 5
#: per image) with every object in a random colour.
DETECTION_DATA = dict(out_dir='data/shapes_rc', num_train=600, num_val=100,
                      seed=0, min_object=32, max_objects=5,
                      random_color_prob=1.0)
#: the pretraining set: the same generator, another seed, more images.
PRETRAIN_DATA = dict(out_dir='data/shapes_rc_pre', num_train=1500,
                     num_val=200, seed=1, min_object=32, max_objects=5,
                     random_color_prob=1.0)
PRETRAIN_CROPS = 'data/shapes_rc_pre_crops'
#: --quick: a few images and iterations, to check the command end to end
QUICK = dict(num_train=8, num_val=4, pretrain_iters=2, epochs=1)


def say(msg):
    print(f'[table7 --embedded {time.strftime("%H:%M:%S")}] {msg}',
          flush=True)


def make_data(root=ROOT, quick=False):
    """Generate both sets and the crops under ``root`` (each skipped when
    already there)."""
    from ..datasets.crops import make_crops
    from ..datasets.shapes import generate
    for spec in (DETECTION_DATA, PRETRAIN_DATA):
        spec = dict(spec, out_dir=osp.join(root, spec['out_dir']))
        if quick:
            spec.update(num_train=QUICK['num_train'],
                        num_val=QUICK['num_val'])
        generate(log=lambda *a: None, **spec)
    make_crops(osp.join(root, PRETRAIN_DATA['out_dir']),
               osp.join(root, PRETRAIN_CROPS), splits=('train', 'val'))


def _relocate(cfg, data_root):
    """Point every ``data_root`` under ``data/`` of ``cfg`` at
    ``data_root``/data/ (--quick writes its data into its work dir)."""
    text = cfg.pretty_text.replace("'data/", f"'{data_root}/data/")
    return Config.fromstring(text, '.py')


def _quick(cfg, kind):
    if kind == 'pretrain':
        n = QUICK['pretrain_iters']
        cfg.train_cfg.update(max_iters=n, val_interval=n)
        cfg.train_dataloader.batch_size = 4
        cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0,
                                    by_epoch=False)]
        cfg.default_hooks.checkpoint.interval = n
    else:
        n = QUICK['epochs']
        cfg.train_cfg.update(max_epochs=n, val_interval=n)
        cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0,
                                    by_epoch=False)]
        cfg.train_dataloader.batch_size = 2
    for key in ('train_dataloader', 'val_dataloader'):
        cfg[key].update(num_workers=0, persistent_workers=False)
    return cfg


def pretrain_config(family, level):
    """The crops pretraining of the cell's backbone, on the input its
    detection config feeds (mean, std, channel order)."""
    det = Config.fromfile(cell_config(family, level))
    cfg = Config.fromfile(PRETRAIN_CONFIG)
    cfg.model.backbone.update(family=family, level=level)
    cfg.model.head.in_channels = cell(family, level)['c5_channels']
    pre = det.model.data_preprocessor
    cfg.data_preprocessor.update(mean=list(pre.mean), std=list(pre.std),
                                 to_rgb=bool(pre.get('bgr_to_rgb', False)))
    return cfg


def finetune_config(family, level, checkpoint):
    """The cell's Table 7 config with finetune_shapes.py merged in and the
    backbone loaded from ``checkpoint``."""
    cfg = Config.fromfile(cell_config(family, level))
    cfg.merge_from_dict(Config.fromfile(FINETUNE_CONFIG).to_dict())
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    return cfg


def run_step(tool, config_path, work_dir, label, python=sys.executable,
             threads=None):
    """Run tools/<tool> on ``config_path`` into ``work_dir`` (resuming),
    logging to ``work_dir``.log; prints a progress line a minute and the
    evaluations. ``threads``: the child's OMP_NUM_THREADS. Raises
    RuntimeError naming the log when it fails."""
    log_path = work_dir + '.log'
    cmd = [python, osp.join(ROOT, 'tools', tool), config_path,
           '--work-dir', work_dir, '--resume']
    say(f'{label}: {" ".join(cmd[1:])} (log: {log_path})')
    # Unbuffered: the child's log lines reach the progress as written.
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = last = time.time()
    with open(log_path, 'a') as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        for line in proc.stdout:
            log.write(line)
            progress = train_progress(line)
            if progress and time.time() - last > 60:
                last = time.time()
                epoch, done, total = progress
                epoch = f' epoch {epoch}' if epoch else ''
                say(f'{label}:{epoch} {done}/{total} '
                    f'({(last - start) / 60:.1f} min)')
            if 'accuracy/top1' in line or 'bbox_mAP_copypaste' in line:
                say(f'{label}: {line.strip().split(" - ")[-1]}')
        code = proc.wait()
    if code != 0:
        raise RuntimeError(f'{label} failed (exit {code}); see {log_path}')
    return time.time() - start


class Cell:
    """One cell's two steps, each skipped when its output is there."""

    def __init__(self, family, level, out_dir, quick=False):
        self.family, self.level, self.out_dir = family, level, out_dir
        self.name = f'{DISPLAY_NAMES[family]} {level}'
        self.pre_cfg = pretrain_config(family, level)
        if quick:
            self.pre_cfg = _quick(_relocate(self.pre_cfg, out_dir),
                                  'pretrain')
        self.pre_dir = osp.join(out_dir, f'pretrain_{family}_{level.lower()}')
        self.checkpoint = osp.join(
            self.pre_dir, f'iter_{self.pre_cfg.train_cfg.max_iters}.pth')
        self.ft_cfg = finetune_config(family, level, self.checkpoint)
        if quick:
            self.ft_cfg = _quick(_relocate(self.ft_cfg, out_dir), 'finetune')
        self.ft_dir = osp.join(out_dir, cell_name(family, level))
        self.result = dict(family=family, level=level)

    def pretrained(self):
        return osp.isfile(self.checkpoint)

    def finetuned(self):
        done = osp.join(self.ft_dir,
                        f'epoch_{self.ft_cfg.train_cfg.max_epochs}.pth')
        return (osp.isfile(done)
                and last_logged(self.ft_dir, 'coco/bbox_mAP') is not None)

    def pretrain(self, threads=None):
        path = self.pre_dir + '.py'
        self.pre_cfg.dump(path)
        self.result['pretrain_min'] = run_step(
            'pretrain.py', path, self.pre_dir, f'{self.name} pretrain',
            threads=threads) / 60

    def finetune(self, threads=None):
        path = osp.join(self.out_dir,
                        f'finetune_{self.family}_{self.level.lower()}.py')
        self.ft_cfg.dump(path)
        self.result['finetune_min'] = run_step(
            'train.py', path, self.ft_dir, f'{self.name} fine-tune',
            threads=threads) / 60

    def collect(self):
        """``top1`` (%, held-out crops) and ``mmap`` (%, val split), beside
        the minutes each step took in this call."""
        self.result['top1'] = last_logged(self.pre_dir, 'accuracy/top1')
        mmap = last_logged(self.ft_dir, 'coco/bbox_mAP')
        self.result['mmap'] = None if mmap is None else 100 * mmap
        say(f'{self.name}: top-1 {self.result["top1"]:.1f}%, '
            f'mAP {self.result["mmap"]:.1f}')
        return self.result


def run_cell(family, level, out_dir, quick=False):
    """Pretrain and fine-tune one cell (each step skipped when done);
    returns run's dict for it."""
    steps = Cell(family, level, out_dir, quick)
    if not steps.pretrained():
        steps.pretrain()
    if not steps.finetuned():
        steps.finetune()
    return steps.collect()


#: the order in which the steps are started, the slowest family first
#: (its CPU images/s), so that two jobs end close together.
SLOWEST_FIRST = ('mobilenetv2', 'xception', 'shufflenetv1', 'shufflenetv2',
                 'shufflenetv2star')


def default_jobs():
    """Two jobs of one thread each: one job's data loading and Python
    overhead leave a core idle that the other job then uses."""
    return min(2, os.cpu_count() or 1)


def run(families, levels, out_dir, quick=False, jobs=None):
    """The whole pipeline for ``families`` x ``levels``; returns
    {(family, level): run_cell's dict}. ``quick``: a few images and
    iterations, the data in ``out_dir`` (to check the command).

    ``jobs`` steps run at once, each on cpu_count // jobs threads (the last
    one on all): every pretraining first (slowest family first), then the
    fine-tunings as their backbones are ready. A failed step does not stop
    the others; the run raises at the end naming every failure.
    """
    jobs = jobs or default_jobs()
    os.makedirs(out_dir, exist_ok=True)
    say('data: data/shapes_rc (detection), data/shapes_rc_pre and its '
        'crops (pretraining)')
    make_data(out_dir if quick else ROOT, quick)
    cells = {(f, lv): Cell(f, lv, out_dir, quick) for lv in levels
             for f in families}
    order = sorted(cells, key=lambda k: (
        SLOWEST_FIRST.index(k[0]) if k[0] in SLOWEST_FIRST else 0))
    todo = [('pretrain', k) for k in order if not cells[k].pretrained()]
    todo += [('finetune', k) for k in order if not cells[k].finetuned()]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    if jobs > 1 and len(todo) > 1:
        say(f'{jobs} steps at a time, {threads} thread(s) each (--jobs)')
    lock = threading.Condition()
    running, failed = set(), {}

    def take():
        # the first step whose backbone is ready; None when nothing is left
        with lock:
            while True:
                for step in list(todo):  # removes as it goes
                    kind, key = step
                    ready = kind == 'pretrain' or (
                        ('pretrain', key) not in running
                        and ('pretrain', key) not in todo)
                    if ready:
                        todo.remove(step)
                        if kind == 'finetune' and key in failed:
                            continue
                        running.add(step)
                        # The last step gets every core: the other jobs
                        # are ending and would leave theirs idle.
                        last = not todo and jobs > 1
                        return step, (None if jobs == 1 or last
                                      else threads)
                if not todo:
                    return None
                lock.wait()

    def worker():
        while True:
            taken = take()
            if taken is None:
                return
            step, step_threads = taken
            kind, key = step
            try:
                getattr(cells[key], kind)(step_threads)
            except Exception as e:  # reported at the end, with the log
                failed[key] = e
                say(f'{e}')
            finally:
                with lock:
                    running.discard(step)
                    lock.notify_all()

    pool = [threading.Thread(target=worker, daemon=True)
            for _ in range(min(jobs, max(1, len(todo))))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if failed:
        raise RuntimeError('; '.join(str(e) for e in failed.values()))
    return {k: cells[k].collect() for k in cells}
