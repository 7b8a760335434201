"""Table 7 reproduced (``tools/table7.py``): every cell's Light-Head R-CNN
timed at batch 4, 800x1200, each cell's COCO mmAP read from its work_dir
when it has been evaluated, the table printed beside the paper's, in
Markdown, and figures like the paper's Fig. 1 (speed vs mmAP, speed vs
FLOPs).

The cells of one level are timed round-robin (A, B, C, A, B, C, ...),
:func:`~shufflenet_det.benchmark.time_interleaved`. mmAP is the last
``coco/bbox_mAP`` logged in ``work_dirs/lighthead_<family>_<level>/`` (the
default work_dir of tools/train.py and tools/test.py for configs/table7/*).
"""
import json
import os
import os.path as osp
import time
from dataclasses import dataclass, field

import torch

from ..apis.detector import build_detector
from ..benchmark.timing import describe_device, environment, time_interleaved
from ..deploy.optimize import use_channels_last
from ..utils.device import check_device
from ..utils.inputs import mmdet_batch, synthetic_images
from ..utils.logs import last_logged
from . import embedded
from .cells import DISPLAY_NAMES, FAMILIES, LEVELS, paper
from .configs import WORK_DIRS, cell_config, cell_name


@dataclass
class TimingSettings:
    """What is timed, and how (``tools/table7.py``'s options).

    ``iters`` and ``warmup`` None: 30 and 10 on CUDA, 3 and 1 on a CPU;
    ``quick``: one of each. ``work_dirs``: where the cells' work_dirs are
    (their mmAP). ``embedded``: the mmAP is the embedded data's
    (:mod:`.embedded`), as the printed table then says.
    """
    families: list = field(default_factory=lambda: list(FAMILIES))
    levels: list = field(default_factory=lambda: list(LEVELS))
    precisions: list = field(default_factory=lambda: ['fp32'])
    device: str = 'cpu'
    batch_size: int = 4
    shape: tuple = (800, 1200)
    iters: int = None
    warmup: int = None
    quick: bool = False
    channels_last: bool = False
    work_dirs: str = WORK_DIRS
    embedded: bool = False


def read_mmap(work_dir):
    """The last COCO bbox mAP (in %) logged under ``work_dir``, or None."""
    mmap = last_logged(work_dir, 'coco/bbox_mAP')
    return None if mmap is None else 100 * mmap


def measure(settings, precision):
    """Time ``settings``' cells in ``precision`` ('fp32', or 'fp16':
    autocast); prints a line a cell. Returns one row (a dict) a cell:
    images/s, its IQR and noise flag, peak memory, the mmAP logged and the
    paper's figures."""
    device = torch.device(settings.device)
    on_gpu = device.type == 'cuda'
    fp16 = precision == 'fp16'
    iters = 1 if settings.quick else (settings.iters or (30 if on_gpu else 3))
    warmup = 1 if settings.quick else (
        settings.warmup if settings.warmup is not None else
        (10 if on_gpu else 1))
    batch = mmdet_batch(synthetic_images(settings.batch_size, settings.shape))
    rows = []
    # One level at a time, its families' models timed round-robin, so that
    # the comparison the table is about (families at one level) is made on
    # the machine in the same state.
    for level in settings.levels:
        models, runs = [], []
        names = [cell_name(family, level) for family in settings.families]
        for family in settings.families:
            model = build_detector(cell_config(family, level)).to(device)
            if settings.channels_last:
                use_channels_last(model, model.backbone)
            models.append(model)

            def run(model=model):
                with torch.autocast(device.type, dtype=torch.float16,
                                    enabled=fp16):
                    return model.test_step(batch)

            runs.append(run)
        results = time_interleaved(runs, device, iters, warmup, names=names)
        for family, name, res in zip(settings.families, names, results):
            speed = settings.batch_size / res['median_s']
            ref = paper(family, level)
            rows.append(dict(
                family=family, level=level, config=name, precision=precision,
                images_per_s=speed, iqr_s=res['iqr_s'], noisy=res['noisy'],
                peak_mem_mb=res['peak_mem_mb'],
                mmap=read_mmap(osp.join(settings.work_dirs, name)),
                paper_mmap=ref['mmap'], paper_images_per_s=ref['speed'],
                mflops=ref['mflops']))
            print(f'{name:<36} {precision} {speed:8.2f} images/s', flush=True)
        del models, runs
    return rows


def print_table(rows, settings, env):
    """The rows of one precision on the console, the paper's figures
    beside them, and the paper's claim (v2 faster than v1 and MobileNet
    v2) checked."""
    precision = rows[0]['precision']
    print(f'\nTable 7 reproduced: Light-Head R-CNN, batch '
          f'{settings.batch_size}, {settings.shape[0]}x{settings.shape[1]}, '
          f'{precision}, {describe_device(env)}. Paper: GTX 1080 Ti, '
          'images/s; COCO minival mmAP.')
    if settings.embedded:
        print('mmAP measured: COCO mAP on the embedded shapes val split '
              '(tools/table7_embedded.py), beside the paper\'s COCO figure; '
              'top-1: the pretrained backbone on the held-out crops.')
    levels = [lv for lv in LEVELS if lv in settings.levels]
    head = ' | '.join(f'{lv:>24}' for lv in levels)
    print(f'{"":<15} | {head}')
    print(f'{"":<15} | ' + ' | '.join(
        f'{"img/s (paper)":>14} {"mmAP":>9}' for _ in levels))
    by_cell = {(r['family'], r['level']): r for r in rows}
    for family in FAMILIES:
        if family not in settings.families:
            continue
        cells = []
        for lv in levels:
            r = by_cell[(family, lv)]
            mmap = f'{r["mmap"]:.1f}' if r['mmap'] is not None else '-'
            cells.append(f'{r["images_per_s"]:6.1f} ({r["paper_images_per_s"]:>3})'
                         f'   {mmap:>4}/{r["paper_mmap"]:.1f}')
        top1 = [by_cell[(family, lv)].get('top1') for lv in levels]
        top1 = ('   top-1 ' + ', '.join(f'{t:.1f}' for t in top1)
                if all(t is not None for t in top1) else '')
        print(f'{DISPLAY_NAMES[family]:<15} | ' + ' | '.join(
            f'{c:>24}' for c in cells) + top1)
    # The paper's claim: ShuffleNet v2 is faster than v1 and MobileNet v2.
    for other in ('shufflenetv1', 'mobilenetv2'):
        if 'shufflenetv2' in settings.families and other in settings.families:
            ratios = [by_cell[('shufflenetv2', lv)]['images_per_s'] /
                      by_cell[(other, lv)]['images_per_s'] for lv in levels]
            ref = [paper('shufflenetv2', lv)['speed'] /
                   paper(other, lv)['speed'] for lv in levels]
            print(f'ShuffleNet v2 / {DISPLAY_NAMES[other]} speed: '
                  + ', '.join(f'{lv} {r:.2f}x (paper {p:.2f}x)'
                              for lv, r, p in zip(levels, ratios, ref)))


def markdown(rows, settings, env):
    """The measured table in Markdown (README's layout): one table per
    precision, images/s with the paper's figure in brackets, and the mmAP of
    the cells evaluated; '-' for a cell not measured (yet). ``settings``:
    anything with ``families``, ``levels``, ``precisions``, ``batch_size``
    and ``shape`` (the GPU run's settings too)."""
    levels = [lv for lv in LEVELS if lv in settings.levels]
    out = []
    for precision in settings.precisions:
        by_cell = {(r['family'], r['level']): r for r in rows
                   if r['precision'] == precision}
        if not by_cell:
            continue
        out += [f'**{precision}**: images/s, batch {settings.batch_size}, '
                f'{settings.shape[0]}x{settings.shape[1]}, '
                f'{describe_device(env)} (in brackets: the paper\'s, GTX '
                '1080 Ti); COCO mmAP where the cell was evaluated.', '',
                '| backbone | ' + ' | '.join(levels) + ' |',
                '|---' * (len(levels) + 1) + '|']
        for family in (f for f in FAMILIES if f in settings.families):
            cells = []
            for lv in levels:
                r = by_cell.get((family, lv))
                if r is None:
                    cells.append('-')
                    continue
                cell = f'{r["images_per_s"]:.1f} ({r["paper_images_per_s"]})'
                if r['mmap'] is not None:
                    cell += f', {r["mmap"]:.1f} mmAP ({r["paper_mmap"]})'
                if r.get('top1') is not None:
                    cell += f', top-1 {r["top1"]:.1f}'
                cells.append(cell)
            out.append(f'| {DISPLAY_NAMES[family]} | '
                       + ' | '.join(cells) + ' |')
        out.append('')
    return '\n'.join(out)


def plot(rows, path):
    """Fig. 1 of the paper for the rows: speed vs mmAP (the paper's points
    beside, x) and speed vs FLOPs, each precision its line style."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    precisions = sorted({r['precision'] for r in rows}, reverse=True)
    styles = dict(fp32='o-', fp16='s:')
    for family in FAMILIES:
        label = DISPLAY_NAMES[family]
        color = None
        for precision in precisions:
            mine = [r for r in rows if r['family'] == family
                    and r['precision'] == precision]
            if not mine:
                continue
            name = label if len(precisions) == 1 else f'{label} {precision}'
            line = axes[1].plot([r['mflops'] for r in mine],
                                [r['images_per_s'] for r in mine],
                                styles[precision], color=color,
                                label=name)[0]
            color = line.get_color()
            with_map = [r for r in mine if r['mmap'] is not None]
            if with_map:
                axes[0].plot([r['images_per_s'] for r in with_map],
                             [r['mmap'] for r in with_map], styles[precision],
                             color=color, label=name)
        if color is not None:
            mine = [r for r in rows if r['family'] == family
                    and r['precision'] == precisions[0]]
            axes[0].plot([r['paper_images_per_s'] for r in mine],
                         [r['paper_mmap'] for r in mine], 'x--',
                         color=color, alpha=0.6,
                         label=f'{label} (paper, 1080 Ti)')
    axes[0].set(xlabel='images/s (batch 4, 800x1200)', ylabel='COCO mmAP (%)',
                title='Speed vs accuracy (x: paper)')
    axes[1].set(xlabel='backbone MFLOPs (224x224)', ylabel='images/s',
                title='Speed vs FLOPs (measured)')
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f'Figures saved to {path}')


def timing_device(device, precisions, quick=False):
    """The checked device (:func:`~shufflenet_det.utils.device.check_device`:
    one line naming the fix if CUDA or mmcv's CUDA ops are missing); cuDNN's
    algorithm search on (as the paper's timings); fp16 on a CPU refused
    unless ``quick``."""
    device = torch.device(check_device(device))
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    elif 'fp16' in precisions and not quick:
        raise SystemExit('error: fp16 is for CUDA devices (on a CPU only '
                         'with --quick, to check the command).')
    return device


def _makedirs_for(path):
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)


def reproduce(settings, json_path=None, markdown_path=None, plot_path=None,
              threads=None, embedded_dir=None, jobs=None):
    """The whole of ``tools/table7.py``: check the device, with
    ``embedded_dir`` first pretrain and fine-tune every cell on the
    embedded data there (:func:`.embedded.run`, ``jobs`` steps at once),
    then time every cell in each precision, print each table and write the
    JSON, the Markdown and the figures where given. Returns the rows."""
    device = timing_device(settings.device, settings.precisions,
                           settings.quick)
    if threads:
        torch.set_num_threads(threads)
    env = environment(device)
    start = time.time()
    trained = {}
    if embedded_dir:
        trained = embedded.run(settings.families, settings.levels,
                               osp.abspath(embedded_dir),
                               quick=settings.quick, jobs=jobs)
    rows = []
    for precision in settings.precisions:
        mine = measure(settings, precision)
        for row in mine:
            if embedded_dir:
                row['top1'] = trained[(row['family'], row['level'])]['top1']
        print_table(mine, settings, env)
        rows += mine
    wall = time.time() - start
    print(f'Wall time: {wall / 60:.1f} min')
    # The measurements first: a failing plot must not lose them.
    if json_path:
        _makedirs_for(json_path)
        with open(json_path, 'w') as f:
            json.dump(dict(
                environment=env, settings=dict(
                    precisions=settings.precisions,
                    channels_last=settings.channels_last,
                    batch_size=settings.batch_size, shape=settings.shape,
                    quick=settings.quick, iters=settings.iters,
                    warmup=settings.warmup, embedded=settings.embedded),
                wall_s=wall, rows=rows), f, indent=2)
    if markdown_path:
        _makedirs_for(markdown_path)
        with open(markdown_path, 'w') as f:
            f.write(markdown(rows, settings, env))
    if plot_path:
        _makedirs_for(plot_path)
        plot(rows, plot_path)
    return rows
