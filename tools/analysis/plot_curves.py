"""Training curves of a work_dir: loss and validation mAP against
iterations and against training minutes, in one PNG.

    python tools/analysis/plot_curves.py work_dirs/demo
    python tools/analysis/plot_curves.py work_dirs/demo --out curves.png \
        --keys loss loss_cls loss_bbox --metric coco/bbox_mAP_50

Reads what mmengine's ``LocalVisBackend`` writes,
``WORK_DIR/<timestamp>/vis_data/scalars.json`` (one JSON object a line:
training lines with ``iter``, ``lr``, ``time``, ``loss``, ``loss_*``;
validation lines with ``coco/bbox_mAP``... and ``step``). The argument may
also be one timestamped run folder, its ``vis_data`` folder or a
``scalars.json`` itself. (mmdet's ``analyze_logs.py`` is not in its pip
package.)

Several runs in a work_dir (an interrupted run and its ``--resume``) are
joined in time order: iterations continue, and a later run replaces what an
earlier one logged from the later run's first logged iteration on (the
iterations a resumed run did again). Runs without a ``scalars.json``
(``tools/test.py`` runs) are left out.

Minutes are training minutes, summed from the logged ``time`` (seconds per
iteration, averaged over the logging window) times the iterations since the
previous logged line; validation, checkpointing and the time between an
interruption and its resume are not counted. A validation point is placed
at the iteration of its ``step`` when that is an iteration (iteration-based
loops with ``log_metric_by_epoch=False``), otherwise (``step`` is an epoch)
at the last training iteration logged before it, which is at most one
logging interval early.
"""
import argparse
import json
import math
import os
import os.path as osp
import re
import sys

DEFAULT_METRIC = 'coco/bbox_mAP'
SCALARS = 'scalars.json'
_TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')


class CurvesError(Exception):
    """Input that cannot be plotted; the message says which file and why."""


def _has_scalars(run_dir):
    return osp.isfile(osp.join(run_dir, 'vis_data', SCALARS))


def find_scalar_files(path):
    """The ``scalars.json`` files that ``path`` (a work_dir, a timestamped
    run folder, a ``vis_data`` folder or the file itself) points at, oldest
    run first."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise CurvesError(f'{path}: no such file or directory (give a '
                          'work_dir, a run folder or a scalars.json)')
    for candidate in (osp.join(path, SCALARS),
                      osp.join(path, 'vis_data', SCALARS)):
        if osp.isfile(candidate):
            return [candidate]
    runs = [osp.join(path, d) for d in sorted(os.listdir(path))
            if _has_scalars(osp.join(path, d))]
    if not runs:
        raise CurvesError(
            f'{path}: no scalars.json found (looked for '
            f'{osp.join(path, "<timestamp>", "vis_data", SCALARS)}); point '
            'at a work_dir that tools/train.py wrote (the config needs '
            "visualizer.vis_backends with 'LocalVisBackend')")
    names = [osp.basename(r) for r in runs]
    if not all(_TIMESTAMP.match(n) for n in names):
        # Not mmengine's timestamps: the files' age decides.
        runs.sort(key=lambda r: os.path.getmtime(
            osp.join(r, 'vis_data', SCALARS)))
    return [osp.join(r, 'vis_data', SCALARS) for r in runs]


def read_scalars(path):
    """The JSON objects of one ``scalars.json``, one per line.

    A last line that is cut short (no newline at its end: the run was killed
    while writing it) is left out with a warning; any other line that is not
    a JSON object is an error naming the file and the line."""
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise CurvesError(f'{path}: cannot be read ({e})') from None
    lines = text.split('\n')
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError('not a JSON object')
        except ValueError as e:
            if number == len(lines):  # no newline after it: cut short
                print(f'warning: {path}, line {number}: incomplete last line '
                      'left out (the run was stopped while writing it)',
                      file=sys.stderr)
                continue
            raise CurvesError(
                f'{path}, line {number}: not a JSON object ({e}): '
                f'{line[:80]!r}; fix or delete that line') from None
        records.append(record)
    return records


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _strip(key):
    """``train/loss`` -> ``loss`` (LogProcessor(log_with_hierarchy=True))."""
    for prefix in ('train/', 'val/'):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def build_curves(runs, metric=DEFAULT_METRIC):
    """Join the runs' records (oldest first) into the plotted series.

    Args:
        runs: a list of record lists, one per run, oldest first (as
            :func:`read_scalars` returns them).
        metric: the validation metric to collect.

    Returns:
        dict with ``train`` (``iter``, ``minutes`` and one list per scalar
        key, None where a line lacks it), ``val`` (``iter``, ``minutes``,
        ``value`` of ``metric``), ``run_starts`` (the first logged iteration
        of every run after the first) and ``val_keys`` (the metric names
        seen).
    """
    train, val, run_starts, val_keys = [], [], [], set()
    for index, records in enumerate(runs):
        run_train, run_val = [], []
        last_iter = None
        for rec in records:
            rec = {_strip(k): v for k, v in rec.items()}
            it = _number(rec.get('iter'))
            if it is not None and any(k.startswith('loss') for k in rec):
                run_train.append(rec)
                last_iter = it
                continue
            metrics = {k: v for k, v in rec.items() if '/' in k
                       and _number(v) is not None}
            if not metrics:
                continue
            val_keys.update(metrics)
            step = _number(rec.get('step'))
            epoch_based = bool(run_train) and 'epoch' in run_train[-1]
            if (step is not None and not epoch_based
                    and (last_iter is None or step >= last_iter)):
                at = step  # the iteration itself
            elif last_iter is not None:
                at = last_iter  # step is an epoch: the last logged iteration
            elif train:
                at = train[-1]['iter']  # a validation-only resumed run
            else:
                continue  # nothing to place it against
            value = _number(metrics.get(metric))
            if value is not None and value < 0:
                value = None  # COCO's -1: no object of that size
            run_val.append((at, value))
        first = (run_train[0]['iter'] if run_train
                 else run_val[0][0] if run_val else None)
        if first is None:
            continue
        if index and (train or val):
            # A later run replaces what earlier runs logged from its start.
            train = [r for r in train if r['iter'] < first]
            val = [v for v in val if v[0] < first]
            run_starts.append(first)
        train.extend(run_train)
        val.extend(run_val)

    keys = []
    for rec in train:
        keys.extend(k for k in rec if k not in keys)
    series = {'iter': [], 'minutes': []}
    series.update({k: [] for k in keys if k not in ('iter', 'step')})
    minutes, prev_iter = 0.0, 0.0
    for rec in train:
        it = _number(rec['iter'])
        seconds = _number(rec.get('time'))
        if seconds is not None and math.isfinite(seconds):
            minutes += seconds * max(it - prev_iter, 0) / 60
        prev_iter = it
        series['iter'].append(it)
        series['minutes'].append(minutes)
        for k in keys:
            if k not in ('iter', 'step'):
                series[k].append(_number(rec.get(k)))

    val_series = {'iter': [], 'minutes': [], 'value': []}
    for at, value in val:
        val_series['iter'].append(at)
        val_series['minutes'].append(_minutes_at(series, at))
        val_series['value'].append(value)
    return dict(train=series, val=val_series, run_starts=run_starts,
                val_keys=sorted(val_keys))


def _minutes_at(series, iteration):
    """Training minutes at an iteration (that of the last logged line at or
    before it)."""
    minutes = 0.0
    for it, m in zip(series['iter'], series['minutes']):
        if it > iteration:
            break
        minutes = m
    return minutes


def load_curves(path, metric=DEFAULT_METRIC):
    """:func:`build_curves` of every run that ``path`` points at; returns
    (curves, the scalars.json files read)."""
    files = find_scalar_files(path)
    runs = []
    for file in files:
        records = read_scalars(file)
        if not records:
            if len(files) == 1:
                raise CurvesError(
                    f'{file}: empty (the run logged nothing yet: its first '
                    'line comes after the logger interval)')
            print(f'warning: {file}: empty, left out', file=sys.stderr)
        runs.append(records)
    curves = build_curves(runs, metric)
    if not curves['train']['iter'] and not curves['val']['iter']:
        raise CurvesError(
            f'{", ".join(files)}: no training line (with "iter" and '
            '"loss") and no validation metric in it')
    return curves, files


def loss_keys(curves, keys=None):
    """The loss series to plot: ``keys``, or ``loss`` and every ``loss_*``
    logged."""
    train = curves['train']
    available = [k for k in train if k.startswith('loss')
                 and any(v is not None for v in train[k])]
    if keys is None:
        return sorted(available, key=lambda k: (k != 'loss', k))
    missing = [k for k in keys if k not in train
               or all(v is None for v in train[k])]
    if missing:
        logged = ', '.join(k for k in train if k not in ('iter', 'minutes'))
        raise CurvesError(f'--keys {" ".join(missing)}: not logged; the '
                          f'training lines have: {logged or "nothing"}')
    return list(keys)


def plot(curves, keys, metric, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    train, val = curves['train'], curves['val']
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), squeeze=False)
    for col, (xkey, xlabel) in enumerate((('iter', 'iteration'),
                                          ('minutes',
                                           'training time (minutes)'))):
        ax = axes[0][col]
        for k in keys:
            pts = [(x, y) for x, y in zip(train[xkey], train[k])
                   if y is not None]
            if pts:
                ax.plot(*zip(*pts), label=k, linewidth=2 if k == 'loss'
                        else 1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel('loss')
        ax.grid(alpha=0.3)
        if keys:
            ax.legend(fontsize=8)
        ax = axes[1][col]
        pts = [(x, y) for x, y in zip(val[xkey], val['value'])
               if y is not None]
        if pts:
            ax.plot(*zip(*pts), marker='o')
        else:
            ax.text(0.5, 0.5, f'no {metric} logged yet', ha='center',
                    va='center', transform=ax.transAxes)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        for start in curves['run_starts']:
            x = start if xkey == 'iter' else _minutes_at(train, start - 1e-6)
            for a in (axes[0][col], axes[1][col]):
                a.axvline(x, color='gray', linestyle='--', linewidth=0.8)
    if curves['run_starts']:
        axes[0][0].set_title('dashed: a resumed run starts', fontsize=9)
    fig.tight_layout()
    out_dir = osp.dirname(osp.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def default_out(path):
    """WORK_DIR/curves.png; for a scalars.json or a vis_data folder, the
    run folder's curves.png."""
    path = osp.normpath(path)
    if osp.isfile(path):
        path = osp.dirname(path)
    if osp.basename(path) == 'vis_data':
        path = osp.dirname(path)
    return osp.join(path, 'curves.png')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Plot loss and validation mAP of a work_dir against '
        'iterations and training minutes')
    parser.add_argument('path', metavar='WORK_DIR',
                        help='work_dir, one of its timestamped runs, or a '
                        'scalars.json')
    parser.add_argument('--out', help='PNG to write (default: '
                        'WORK_DIR/curves.png)')
    parser.add_argument('--keys', nargs='+', help='loss keys to plot '
                        '(default: loss and every loss_*)')
    parser.add_argument('--metric', default=DEFAULT_METRIC,
                        help='validation metric (default: %(default)s)')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        curves, files = load_curves(args.path, args.metric)
        if (args.metric != DEFAULT_METRIC and curves['val_keys']
                and args.metric not in curves['val_keys']):
            raise CurvesError(
                f'--metric {args.metric}: not logged; the validation lines '
                f'have: {", ".join(curves["val_keys"])}')
        keys = loss_keys(curves, args.keys)
        out = args.out or default_out(args.path)
        if not out.lower().endswith(('.png', '.pdf', '.svg')):
            raise CurvesError(f'--out {out}: give a .png (or .pdf, .svg) '
                              'file name')
        plot(curves, keys, args.metric, out)
    except (CurvesError, OSError) as e:
        if args.debug:
            raise
        print(f'error: {e}', file=sys.stderr)
        sys.exit(1)
    except Exception:  # noqa: BLE001  (a bug: the project's one-line report)
        if args.debug:
            raise
        # Imported only here: the package (torch, mmdet) takes seconds.
        sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
            osp.abspath(__file__)))))
        from shufflenet_det.utils.cli import user_errors
        with user_errors():
            raise
    train, val = curves['train'], curves['val']
    done = [(i, v) for i, v in zip(val['iter'], val['value'])
            if v is not None]
    last = (f'last {args.metric} {done[-1][1]:.3f} at iteration '
            f'{done[-1][0]:.0f}' if done else f'no {args.metric} yet')
    extent = (f'{train["iter"][-1]:.0f} iterations, '
              f'{train["minutes"][-1]:.1f} training minutes'
              if train['iter'] else 'no training line')
    runs = f', {len(files)} runs joined' if len(files) > 1 else ''
    print(f'Curves written to {out} ({extent}{runs}); {last}')
    return curves


if __name__ == '__main__':
    main()
