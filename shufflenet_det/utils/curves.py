"""Training curves of a work_dir: loss and validation mAP against
iterations and against training minutes (``tools/analysis/plot_curves.py``).

Several runs in a work_dir (an interrupted run and its ``--resume``) are
joined in time order: iterations continue, and a later run replaces what an
earlier one logged from the later run's first logged iteration on (the
iterations a resumed run did again).

Minutes are training minutes, summed from the logged ``time`` (seconds per
iteration, averaged over the logging window) times the iterations since the
previous logged line; validation, checkpointing and the time between an
interruption and its resume are not counted. A validation point is placed
at the iteration of its ``step`` when that is an iteration (iteration-based
loops with ``log_metric_by_epoch=False``), otherwise (``step`` is an epoch)
at the last training iteration logged before it, which is at most one
logging interval early.
"""
import math
import os
import os.path as osp
import sys

from .logs import LogError, find_scalar_files, read_json_lines

DEFAULT_METRIC = 'coco/bbox_mAP'


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
            :func:`~shufflenet_det.utils.logs.read_json_lines` returns
            them).
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
        records = read_json_lines(file)
        if not records:
            if len(files) == 1:
                raise LogError(
                    f'{file}: empty (the run logged nothing yet: its first '
                    'line comes after the logger interval)')
            print(f'warning: {file}: empty, left out', file=sys.stderr)
        runs.append(records)
    curves = build_curves(runs, metric)
    if not curves['train']['iter'] and not curves['val']['iter']:
        raise LogError(
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
        raise LogError(f'--keys {" ".join(missing)}: not logged; the '
                       f'training lines have: {logged or "nothing"}')
    return list(keys)


def plot(curves, keys, metric, out):
    """Draw the losses ``keys`` (top) and ``metric`` (bottom) against
    iterations (left) and training minutes (right) into ``out``; dashed
    lines where a resumed run starts."""
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


def plot_work_dir(path, out=None, keys=None, metric=DEFAULT_METRIC):
    """Read the runs ``path`` points at and draw their curves into ``out``
    (default: :func:`default_out`). Returns (curves, the scalars.json files
    read, out). Raises :class:`LogError`, with the file or the option at
    fault, before drawing anything."""
    curves, files = load_curves(path, metric)
    if (metric != DEFAULT_METRIC and curves['val_keys']
            and metric not in curves['val_keys']):
        raise LogError(
            f'--metric {metric}: not logged; the validation lines '
            f'have: {", ".join(curves["val_keys"])}')
    keys = loss_keys(curves, keys)
    out = out or default_out(path)
    if not out.lower().endswith(('.png', '.pdf', '.svg')):
        raise LogError(f'--out {out}: give a .png (or .pdf, .svg) file name')
    plot(curves, keys, metric, out)
    return curves, files, out


def summary(curves, files, metric, out):
    """The line the tool prints: where the figure is, how far training
    went, how many runs were joined and the last value of ``metric``."""
    train, val = curves['train'], curves['val']
    done = [(i, v) for i, v in zip(val['iter'], val['value'])
            if v is not None]
    last = (f'last {metric} {done[-1][1]:.3f} at iteration '
            f'{done[-1][0]:.0f}' if done else f'no {metric} yet')
    extent = (f'{train["iter"][-1]:.0f} iterations, '
              f'{train["minutes"][-1]:.1f} training minutes'
              if train['iter'] else 'no training line')
    runs = f', {len(files)} runs joined' if len(files) > 1 else ''
    return f'Curves written to {out} ({extent}{runs}); {last}'
