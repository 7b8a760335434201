"""Classification FLOPs of the 20 Table 7 backbones, beside the paper's.

    python tools/analysis/backbone_flops.py
    python tools/analysis/backbone_flops.py --families mobilenetv2 xception
    python tools/analysis/backbone_flops.py --json work_dirs/flops.json --check

Each cell's backbone (``shufflenet_det.table7``, classification form: the
deepest feature) gets a classifier head (global average pool + fc to 1000)
and is counted at 224x224 with ``torch.utils.flop_counter`` (multiply-adds
= FLOPs / 2), as the paper's Tables 5 and 8 count. The paper's figure for
ShuffleNet v2* is v2's (the paper gives none). ``--json`` writes a list of
``{"family", "level", "backbone", "mflops", "paper_mflops", "params_m"}``,
where ``backbone`` is the config that builds the counted network.
``--check`` exits with status 1 when a cell is off the paper by more than
``--tolerance``.
"""
import argparse
import json
import sys

from shufflenet_det import table7
from shufflenet_det.benchmark.complexity import count_backbones


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--families', nargs='+', default=list(table7.FAMILIES),
                   choices=table7.FAMILIES)
    p.add_argument('--levels', nargs='+', default=list(table7.LEVELS),
                   choices=table7.LEVELS)
    p.add_argument('--input-size', type=int, default=224)
    p.add_argument('--json', help='write the results to this JSON file')
    p.add_argument('--tolerance', type=float, default=0.05,
                   help='relative difference to the paper that is marked '
                   '(default 0.05)')
    p.add_argument('--check', action='store_true',
                   help='exit with status 1 if a cell is off by more than '
                   '--tolerance')
    return p.parse_args(argv)


def count_cells(cells, input_size=224):
    """One result dict per (family, level): the classification backbone
    config, its MFLOPs (multiply-adds) and params with a 1000-way
    classifier, and the paper's MFLOPs."""
    cfgs = [table7.backbone_cfg(f, lv, detection=False) for f, lv in cells]
    return [dict(family=family, level=level, backbone=cfg,
                 mflops=round(mflops, 2),
                 paper_mflops=table7.paper(family, level)['mflops'],
                 params_m=round(params, 3))
            for (family, level), cfg, (mflops, params) in zip(
                cells, cfgs, count_backbones(cfgs, input_size))]


def main(argv=None):
    args = parse_args(argv)
    cells = [(f, lv) for f, lv in table7.cells()
             if f in args.families and lv in args.levels]
    results = count_cells(cells, args.input_size)

    print(f'Classification multiply-adds at {args.input_size}x'
          f'{args.input_size}, 1000-way classifier included '
          '(torch.utils.flop_counter, FLOPs / 2)\n')
    print(f'{"backbone":<16} {"level":>5} {"config":<48} {"MFLOPs":>8} '
          f'{"paper":>6} {"ratio":>6} {"params":>7}')
    off = []
    for r in results:
        cfg = {k: v for k, v in r['backbone'].items() if k != 'out_indices'}
        desc = cfg.pop('type') + '(' + ', '.join(
            f'{k}={v}' for k, v in cfg.items()) + ')'
        ratio = r['mflops'] / r['paper_mflops']
        mark = ''
        if abs(ratio - 1) > args.tolerance:
            mark = '  <- off the paper'
            off.append(r)
        note = '+' if table7.PAPER_MFLOPS_NOTES.get(r['family']) else ''
        print(f'{table7.DISPLAY_NAMES[r["family"]]:<16} {r["level"]:>5} '
              f'{desc:<48} {r["mflops"]:>8.1f} '
              f'{str(r["paper_mflops"]) + note:>6} {ratio:>6.3f} '
              f'{r["params_m"]:>6.2f}M{mark}')
    for family, text in table7.PAPER_MFLOPS_NOTES.items():
        if family in args.families:
            print(f'\n+ {table7.DISPLAY_NAMES[family]}: {text}.')
    counted = {(r['family'], r['level']): r['mflops'] for r in results}
    extra = []
    for lv in table7.LEVELS:
        if ('shufflenetv2', lv) in counted and (
                'shufflenetv2star', lv) in counted:
            diff = counted['shufflenetv2star', lv] - counted['shufflenetv2', lv]
            extra.append(f'{lv} {diff:+.1f}')
    if extra:
        print('ShuffleNet v2* minus v2, MFLOPs: ' + ', '.join(extra))
    print(f'\n{len(results) - len(off)}/{len(results)} cells within '
          f'{args.tolerance:.0%} of the paper.')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
        print(f'wrote {args.json}')
    if args.check and off:
        sys.exit(1)


if __name__ == '__main__':
    main()
