"""Reproduce the ShuffleNet V2 paper's Table 7: time every cell's Light-Head
R-CNN at batch 4, 800x1200, read each cell's COCO mmAP from its work_dir
when it has been evaluated, and print the table beside the paper's, with
figures like the paper's Fig. 1 (speed vs mmAP, speed vs FLOPs).

    python tools/table7.py                       # all 20 cells, GPU if any
    python tools/table7.py --device cpu --quick  # CPU: one timed run per cell
    python tools/table7.py --families shufflenetv2 shufflenetv1 --levels 140M
    python tools/table7.py --fp16 --json table7_fp16.json --plot table7.png

The whole GPU table, fp32 and fp16, in one command (table7.json, table7.md
and table7.png in the output directory):

    python tools/table7.py --device cuda --precisions fp32 fp16 \
        --out-dir work_dirs/table7_gpu

The mini Table 7 on the embedded data, with both columns measured: each
cell's backbone pretrained on crops, its Table 7 config fine-tuned on the
shapes set (COCO mAP on its val split), then every cell timed as above
(tools/table7_embedded.py; resumes a run that was cut off):

    python tools/table7.py --embedded --levels 40M --device cpu

The cells of one level are timed round-robin (A, B, C, A, B, C, ...). On
CUDA the tool first checks that CUDA is available and that mmcv's ops have
CUDA kernels, and stops with one line naming the fix if not.

mmAP comes from work_dirs/lighthead_<family>_<level>/ (the default work_dir
of tools/train.py and tools/test.py for configs/table7/*): the last
``coco/bbox_mAP`` logged there.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import torch  # noqa: E402

from shufflenet_det import table7  # noqa: E402
from shufflenet_det.apis.detector import build_detector  # noqa: E402
from shufflenet_det.benchmark.timing import (
    describe_device,
    environment,
    time_interleaved,
)
from shufflenet_det.utils.inputs import mmdet_batch, synthetic_images  # noqa: E402
from shufflenet_det.deploy.optimize import use_channels_last  # noqa: E402
from shufflenet_det.utils.device import check_device  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def cell_config(family, level):
    return osp.join(ROOT, 'configs', 'table7',
                    f'lighthead_{family}_{level.lower()}.py')


def last_logged(work_dir, key):
    """The last value of ``key`` in the JSON logs under ``work_dir``, or
    None."""
    value = None
    for path in sorted(glob.glob(osp.join(work_dir, '*', '**', '*.json'),
                                 recursive=True), key=osp.getmtime):
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and key in record:
                    value = float(record[key])
    return value


def read_mmap(work_dir):
    """The last COCO bbox mAP (in %) logged under ``work_dir``, or None."""
    mmap = last_logged(work_dir, 'coco/bbox_mAP')
    return None if mmap is None else 100 * mmap


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--families', nargs='+', default=list(table7.FAMILIES),
                   choices=table7.FAMILIES)
    p.add_argument('--levels', '--level', nargs='+', default=None,
                   choices=table7.LEVELS,
                   help='(default: all four; 40M with --embedded)')
    p.add_argument('--embedded', action='store_true',
                   help='first pretrain and fine-tune every cell on the '
                   'embedded shapes data (tools/table7_embedded.py) and '
                   'report its mAP (default --out-dir: '
                   'work_dirs/table7_embedded)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available()
                   else 'cpu', choices=['cuda', 'cpu'])
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--shape', type=int, nargs=2, default=[800, 1200],
                   metavar=('H', 'W'))
    p.add_argument('--precisions', nargs='+', choices=['fp32', 'fp16'],
                   default=None,
                   help='time every cell in each (fp16: autocast; default '
                   'fp32)')
    p.add_argument('--fp16', action='store_true',
                   help='the same as --precisions fp16')
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--iters', type=int, default=None,
                   help='timed runs per cell (default 30 CUDA, 3 CPU)')
    p.add_argument('--warmup', type=int, default=None,
                   help='untimed runs per cell first (default 10 CUDA, 1 CPU)')
    p.add_argument('--quick', action='store_true',
                   help='one warm-up and one timed run per cell: checks the '
                   'command (on a CPU, fp16 included)')
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--jobs', type=int, default=None,
                   help='--embedded: training steps run at once, each on '
                   'cores / jobs threads (default: 2 where there are 2 '
                   'cores or more)')
    p.add_argument('--work-dirs', default=osp.join(ROOT, 'work_dirs'),
                   help='where the cells\' work_dirs are')
    p.add_argument('--json', help='write the measured table here')
    p.add_argument('--markdown', help='write the table, as in README, here')
    p.add_argument('--plot', help='save the figures to this PNG')
    p.add_argument('--out-dir', help='write table7.json, table7.md and '
                   'table7.png here (unless --json/--markdown/--plot say '
                   'otherwise)')
    args = p.parse_args(argv)
    if args.levels is None:
        args.levels = ['40M'] if args.embedded else list(table7.LEVELS)
    if args.embedded:
        args.out_dir = args.out_dir or osp.join(ROOT, 'work_dirs',
                                                'table7_embedded')
        args.work_dirs = args.out_dir
    if args.fp16 and args.precisions and args.precisions != ['fp16']:
        p.error('--fp16 is --precisions fp16: give one of them')
    args.precisions = args.precisions or (['fp16'] if args.fp16 else ['fp32'])
    if args.out_dir:
        for key, name in (('json', 'table7.json'), ('markdown', 'table7.md'),
                          ('plot', 'table7.png')):
            if getattr(args, key) is None:
                setattr(args, key, osp.join(args.out_dir, name))
    return args


def measure(args, precision):
    device = torch.device(args.device)
    on_gpu = device.type == 'cuda'
    fp16 = precision == 'fp16'
    iters = 1 if args.quick else (args.iters or (30 if on_gpu else 3))
    warmup = 1 if args.quick else (
        args.warmup if args.warmup is not None else (10 if on_gpu else 1))
    batch = mmdet_batch(synthetic_images(args.batch_size, args.shape))
    rows = []
    # One level at a time, its families' models timed round-robin, so that
    # the comparison the table is about (families at one level) is made on
    # the machine in the same state.
    for level in args.levels:
        models, runs = [], []
        names = [f'lighthead_{family}_{level.lower()}'
                 for family in args.families]
        for family in args.families:
            model = build_detector(cell_config(family, level)).to(device)
            if args.channels_last:
                use_channels_last(model, model.backbone)
            models.append(model)

            def run(model=model):
                with torch.autocast(device.type, dtype=torch.float16,
                                    enabled=fp16):
                    return model.test_step(batch)

            runs.append(run)
        results = time_interleaved(runs, device, iters, warmup, names=names)
        for family, name, res in zip(args.families, names, results):
            speed = args.batch_size / res['median_s']
            paper = table7.paper(family, level)
            rows.append(dict(
                family=family, level=level, config=name, precision=precision,
                images_per_s=speed, iqr_s=res['iqr_s'], noisy=res['noisy'],
                peak_mem_mb=res['peak_mem_mb'],
                mmap=read_mmap(osp.join(args.work_dirs, name)),
                paper_mmap=paper['mmap'], paper_images_per_s=paper['speed'],
                mflops=paper['mflops']))
            print(f'{name:<36} {precision} {speed:8.2f} images/s', flush=True)
        del models, runs
    return rows


def print_table(rows, args, env):
    precision = rows[0]['precision']
    print(f'\nTable 7 reproduced: Light-Head R-CNN, batch {args.batch_size},'
          f' {args.shape[0]}x{args.shape[1]}, {precision}, '
          f'{describe_device(env)}. Paper: GTX 1080 Ti, images/s; COCO '
          'minival mmAP.')
    if args.embedded:
        print('mmAP measured: COCO mAP on the embedded shapes val split '
              '(tools/table7_embedded.py), beside the paper\'s COCO figure; '
              'top-1: the pretrained backbone on the held-out crops.')
    levels = [lv for lv in table7.LEVELS if lv in args.levels]
    head = ' | '.join(f'{lv:>24}' for lv in levels)
    print(f'{"":<15} | {head}')
    print(f'{"":<15} | ' + ' | '.join(
        f'{"img/s (paper)":>14} {"mmAP":>9}' for _ in levels))
    by_cell = {(r['family'], r['level']): r for r in rows}
    for family in table7.FAMILIES:
        if family not in args.families:
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
        print(f'{table7.DISPLAY_NAMES[family]:<15} | ' + ' | '.join(
            f'{c:>24}' for c in cells) + top1)
    # The paper's claim: ShuffleNet v2 is faster than v1 and MobileNet v2.
    for other in ('shufflenetv1', 'mobilenetv2'):
        if 'shufflenetv2' in args.families and other in args.families:
            ratios = [by_cell[('shufflenetv2', lv)]['images_per_s'] /
                      by_cell[(other, lv)]['images_per_s'] for lv in levels]
            paper = [table7.paper('shufflenetv2', lv)['speed'] /
                     table7.paper(other, lv)['speed'] for lv in levels]
            print(f'ShuffleNet v2 / {table7.DISPLAY_NAMES[other]} speed: '
                  + ', '.join(f'{lv} {r:.2f}x (paper {p:.2f}x)'
                              for lv, r, p in zip(levels, ratios, paper)))


def markdown(rows, args, env):
    """The measured table in Markdown (README's layout): one table per
    precision, images/s with the paper's figure in brackets, and the mmAP of
    the cells evaluated; '-' for a cell not measured (yet)."""
    levels = [lv for lv in table7.LEVELS if lv in args.levels]
    out = []
    for precision in args.precisions:
        by_cell = {(r['family'], r['level']): r for r in rows
                   if r['precision'] == precision}
        if not by_cell:
            continue
        out += [f'**{precision}**: images/s, batch {args.batch_size}, '
                f'{args.shape[0]}x{args.shape[1]}, {describe_device(env)} '
                '(in brackets: the paper\'s, GTX 1080 Ti); COCO mmAP where '
                'the cell was evaluated.', '',
                '| backbone | ' + ' | '.join(levels) + ' |',
                '|---' * (len(levels) + 1) + '|']
        for family in (f for f in table7.FAMILIES if f in args.families):
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
            out.append(f'| {table7.DISPLAY_NAMES[family]} | '
                       + ' | '.join(cells) + ' |')
        out.append('')
    return '\n'.join(out)


def plot(rows, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    precisions = sorted({r['precision'] for r in rows}, reverse=True)
    styles = dict(fp32='o-', fp16='s:')
    for family in table7.FAMILIES:
        label = table7.DISPLAY_NAMES[family]
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
    print(f'Figures saved to {path}')


def _makedirs_for(path):
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)


def timing_device(args):
    """The checked device for ``args.device``; cuDNN's algorithm search on
    (as the paper's timings); fp16 on a CPU refused unless ``--quick``."""
    device = torch.device(check_device(args.device))
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    elif 'fp16' in args.precisions and not args.quick:
        raise SystemExit('error: fp16 is for CUDA devices (on a CPU only '
                         'with --quick, to check the command).')
    return device


def main(argv=None):
    args = parse_args(argv)
    device = timing_device(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    env = environment(device)
    start = time.time()
    embedded = {}
    if args.embedded:
        from table7_embedded import run as run_embedded
        embedded = run_embedded(args.families, args.levels,
                                osp.abspath(args.out_dir), quick=args.quick,
                                jobs=args.jobs)
    rows = []
    for precision in args.precisions:
        mine = measure(args, precision)
        for row in mine:
            if args.embedded:
                row['top1'] = embedded[(row['family'], row['level'])]['top1']
        print_table(mine, args, env)
        rows += mine
    wall = time.time() - start
    print(f'Wall time: {wall / 60:.1f} min')
    # The measurements first: a failing plot must not lose them.
    if args.json:
        _makedirs_for(args.json)
        with open(args.json, 'w') as f:
            json.dump(dict(
                environment=env, settings=dict(
                    precisions=args.precisions,
                    channels_last=args.channels_last,
                    batch_size=args.batch_size, shape=args.shape,
                    quick=args.quick, iters=args.iters, warmup=args.warmup,
                    embedded=args.embedded), wall_s=wall,
                rows=rows), f, indent=2)
    if args.markdown:
        _makedirs_for(args.markdown)
        with open(args.markdown, 'w') as f:
            f.write(markdown(rows, args, env))
    if args.plot:
        _makedirs_for(args.plot)
        plot(rows, args.plot)
    return rows


if __name__ == '__main__':
    main()
