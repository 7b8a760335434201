"""Reading what mmengine logs in a work_dir, for the tools that tabulate
and plot finished (or running) runs.

Two kinds of log, both written by mmengine's ``Runner``:

- JSON lines, one object a line: ``WORK_DIR/<timestamp>/vis_data/
  scalars.json`` (``LocalVisBackend``; training lines with ``iter``, ``lr``,
  ``time``, ``loss*``; validation lines with ``coco/bbox_mAP``... and
  ``step``) and the ``<timestamp>.json`` beside it;
- the text log a run prints (``Iter(train) [ 20/600]`` progress lines,
  mmdet's ``bbox_mAP_copypaste`` line after each COCO evaluation).

mmengine has writers for these, no readers (mmdet's ``analyze_logs.py`` is
not in its pip package). Plain Python: no torch needed to read a log.
"""
import glob
import json
import os
import os.path as osp
import re
import sys

SCALARS = 'scalars.json'
_TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')


class LogError(Exception):
    """A log that cannot be read; the message says which file and why."""


def _has_scalars(run_dir):
    return osp.isfile(osp.join(run_dir, 'vis_data', SCALARS))


def find_scalar_files(path):
    """The ``scalars.json`` files that ``path`` (a work_dir, a timestamped
    run folder, a ``vis_data`` folder or the file itself) points at, oldest
    run first. Runs without one (``tools/test.py`` runs) are left out."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise LogError(f'{path}: no such file or directory (give a '
                       'work_dir, a run folder or a scalars.json)')
    for candidate in (osp.join(path, SCALARS),
                      osp.join(path, 'vis_data', SCALARS)):
        if osp.isfile(candidate):
            return [candidate]
    runs = [osp.join(path, d) for d in sorted(os.listdir(path))
            if _has_scalars(osp.join(path, d))]
    if not runs:
        raise LogError(
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


def read_json_lines(path, strict=True):
    """The JSON objects of one JSON-lines log, in order.

    ``strict`` (plotting a run: a damaged log should be noticed): a last
    line cut short (no newline at its end: the run was killed while writing
    it) is left out with a warning; any other line that is not a JSON
    object is a :class:`LogError` naming the file and the line. Not
    ``strict`` (picking a figure out of whatever a work_dir holds): every
    line that is not a JSON object is skipped.
    """
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise LogError(f'{path}: cannot be read ({e})') from None
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
            if not strict:
                continue
            if number == len(lines):  # no newline after it: cut short
                print(f'warning: {path}, line {number}: incomplete last line '
                      'left out (the run was stopped while writing it)',
                      file=sys.stderr)
                continue
            raise LogError(
                f'{path}, line {number}: not a JSON object ({e}): '
                f'{line[:80]!r}; fix or delete that line') from None
        records.append(record)
    return records


def last_logged(work_dir, key):
    """The last value of ``key`` in the JSON logs of every run under
    ``work_dir`` (the newest file last, by modification time: a later
    ``tools/test.py`` run's figure wins), as a float; None if never
    logged."""
    value = None
    for path in sorted(glob.glob(osp.join(work_dir, '*', '**', '*.json'),
                                 recursive=True), key=osp.getmtime):
        for record in read_json_lines(path, strict=False):
            if key in record:
                value = float(record[key])
    return value


def last_match(pattern, text, cast=float):
    """The last group ``pattern`` finds in a text log, cast; or None."""
    found = re.findall(pattern, text)
    return cast(found[-1]) if found else None


#: ``Epoch(train) [3][ 20/150]`` or ``Iter(train) [ 20/600]``
_PROGRESS = re.compile(
    r'(Iter|Epoch)\(train\)\s*(\[\d+\])?\s*\[\s*(\d+)/(\d+)\]')


def train_progress(line):
    """(epoch as ``'[3]'`` or None, iterations done, of) of a training
    line of the text log; None for any other line."""
    m = _PROGRESS.search(line)
    return None if m is None else (m.group(2), int(m.group(3)),
                                   int(m.group(4)))


# mmdet's CocoMetric logs this, and no mAP, when a model detected nothing
# on the whole val set (e.g. a detector still in its warm-up).
NO_DETECTIONS = 'The testing results of the whole dataset is empty'


def last_coco_bbox(text):
    """The last COCO evaluation in a text log: (the six APs of its
    ``bbox_mAP_copypaste`` line, True); ``([0.0] * 6, False)`` when it
    detected nothing (:data:`NO_DETECTIONS`): a model that detects nothing
    scores 0; None when the log has no evaluation."""
    copypaste = re.findall(r'bbox_mAP_copypaste: ([-\d. ]+)', text)
    empty = text.rfind(NO_DETECTIONS)
    if copypaste and text.rfind('bbox_mAP_copypaste') > empty:
        return [float(v) for v in copypaste[-1].split()], True
    if empty >= 0:
        return [0.0] * 6, False
    return None
