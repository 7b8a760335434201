"""tools/analysis/plot_curves.py and what it calls
(shufflenet_det.utils.curves, shufflenet_det.utils.logs): the series
computed from mmengine's scalars.json (resumed runs joined, minutes from the
'time' field, validation placed on the iteration axis), the PNG, and the
one-line errors."""
import json
import os.path as osp

import pytest
from cli_helpers import run_tool

from shufflenet_det.utils import curves as curves_api
from shufflenet_det.utils.logs import LogError


def train_line(it, loss, time=0.6, **extra):
    return dict(lr=0.01, data_time=0.01, loss=loss, loss_cls=loss / 2,
                loss_bbox=loss / 4, loss_rpn_cls=loss / 8, time=time,
                iter=it, memory=0, step=it, **extra)


def val_line(step, mAP):
    return {'coco/bbox_mAP': mAP, 'coco/bbox_mAP_50': 2 * mAP,
            'data_time': 0.01, 'time': 0.3, 'step': step}


def write_run(work_dir, stamp, lines, tail=''):
    vis = work_dir / stamp / 'vis_data'
    vis.mkdir(parents=True)
    text = ''.join(json.dumps(line) + '\n' for line in lines) + tail
    (vis / 'scalars.json').write_text(text)
    return vis / 'scalars.json'


@pytest.fixture
def resumed_work_dir(tmp_path):
    """An iteration-based run killed after logging iteration 40 (its last
    checkpoint: 30), resumed: the second run logs 40 again, then 50, 60.
    Validation every 30 iterations with log_metric_by_epoch=False."""
    work = tmp_path / 'work'
    write_run(work, '20240101_120000', [
        train_line(10, 4.0, time=0.6), train_line(20, 3.0, time=0.6),
        train_line(30, 2.5, time=0.6), val_line(30, 0.010),
        train_line(40, 2.4, time=0.6)])
    write_run(work, '20240101_130500', [
        train_line(40, 2.3, time=1.2), train_line(50, 2.0, time=1.2),
        train_line(60, 1.8, time=1.2), val_line(60, 0.025)])
    # A tools/test.py run in the same work_dir writes no scalars.json.
    (work / '20240101_140000' / 'vis_data').mkdir(parents=True)
    return work


def test_resumed_runs_are_joined_in_time_order(resumed_work_dir):
    curves, files = curves_api.load_curves(str(resumed_work_dir))
    assert [osp.basename(osp.dirname(osp.dirname(f))) for f in files] == [
        '20240101_120000', '20240101_130500']
    train, val = curves['train'], curves['val']
    # The second run's iteration 40 replaces the first run's.
    assert train['iter'] == [10, 20, 30, 40, 50, 60]
    assert train['loss'] == [4.0, 3.0, 2.5, 2.3, 2.0, 1.8]
    assert train['loss_cls'] == [2.0, 1.5, 1.25, 1.15, 1.0, 0.9]
    # minutes: 'time' (s/iteration) x iterations since the previous line.
    expected = [10 * 0.6, 20 * 0.6, 30 * 0.6, 30 * 0.6 + 10 * 1.2,
                30 * 0.6 + 20 * 1.2, 30 * 0.6 + 30 * 1.2]
    assert train['minutes'] == pytest.approx([s / 60 for s in expected])
    assert curves['run_starts'] == [40]
    assert val['iter'] == [30, 60]
    assert val['value'] == [0.010, 0.025]
    assert val['minutes'] == pytest.approx([18 / 60, 54 / 60])
    assert 'coco/bbox_mAP_50' in curves['val_keys']
    assert curves_api.loss_keys(curves) == [
        'loss', 'loss_bbox', 'loss_cls', 'loss_rpn_cls']


def test_epoch_based_validation_is_placed_at_the_last_logged_iteration():
    # LoggerHook(log_metric_by_epoch=True): validation's step is the epoch.
    run = [train_line(10, 3.0, epoch=1), train_line(20, 2.0, epoch=1),
           val_line(1, 0.004), train_line(30, 1.5, epoch=2),
           val_line(2, 0.012)]
    curves = curves_api.build_curves([run])
    assert curves['val']['iter'] == [20, 30]
    assert curves['val']['value'] == [0.004, 0.012]
    # log_with_hierarchy=True prefixes the keys with train/ and val/.
    run = [{f'train/{k}': v for k, v in train_line(5, 1.0).items()}]
    assert curves_api.build_curves([run])['train']['loss'] == [1.0]


def test_cli_writes_the_png_and_names_the_last_map(resumed_work_dir):
    proc = run_tool('tools/analysis/plot_curves.py', str(resumed_work_dir),
                    timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    png = resumed_work_dir / 'curves.png'
    assert png.is_file() and png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert str(png) in proc.stdout
    assert 'last coco/bbox_mAP 0.025 at iteration 60' in proc.stdout
    assert '2 runs joined' in proc.stdout


def test_run_folder_file_keys_metric_and_out(resumed_work_dir, tmp_path):
    run_dir = resumed_work_dir / '20240101_120000'
    _, _, out = curves_api.plot_work_dir(str(run_dir))
    assert out == str(run_dir / 'curves.png')
    assert (run_dir / 'curves.png').stat().st_size > 0
    out = tmp_path / 'sub' / 'c.png'
    scalars = run_dir / 'vis_data' / 'scalars.json'
    curves, files, written = curves_api.plot_work_dir(
        str(scalars), str(out), ['loss', 'loss_cls'], 'coco/bbox_mAP_50')
    assert out.stat().st_size > 0 and written == str(out)
    assert curves['val']['value'] == [0.020]
    assert 'last coco/bbox_mAP_50 0.020 at iteration 30' in \
        curves_api.summary(curves, files, 'coco/bbox_mAP_50', written)


def test_no_validation_yet(tmp_path):
    work = tmp_path / 'work'
    write_run(work, '20240101_120000', [train_line(10, 4.0)])
    curves, files, out = curves_api.plot_work_dir(str(work))
    assert 'no coco/bbox_mAP yet' in curves_api.summary(
        curves, files, 'coco/bbox_mAP', out)
    assert (work / 'curves.png').stat().st_size > 0


def test_incomplete_last_line_is_left_out(tmp_path, capsys):
    work = tmp_path / 'work'
    write_run(work, '20240101_120000', [train_line(10, 4.0)],
              tail='{"lr": 0.01, "loss": 3.')
    curves, _, _ = curves_api.plot_work_dir(str(work))
    assert curves['train']['iter'] == [10]
    assert 'line 2: incomplete last line left out' in capsys.readouterr().err


def error_of(*args):
    """The message of the LogError that plot_work_dir raises for
    ``args``, before it writes anything."""
    with pytest.raises(LogError) as exc:
        curves_api.plot_work_dir(*args)
    return str(exc.value)


def test_errors(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    msg = error_of(str(work))
    assert str(work) in msg and 'no scalars.json' in msg
    msg = error_of(str(tmp_path / 'nowhere'))
    assert 'no such file or directory' in msg

    scalars = write_run(work, '20240101_120000', [])
    msg = error_of(str(work))
    assert str(scalars) in msg and 'empty' in msg

    scalars.write_text(json.dumps(train_line(10, 4.0)) + '\n'
                       '{"loss": 3.0, "iter": \n'
                       + json.dumps(train_line(30, 2.0)) + '\n')
    msg = error_of(str(work))
    assert f'{scalars}, line 2' in msg and 'not a JSON object' in msg

    scalars.write_text(json.dumps(train_line(10, 4.0)) + '\n[1, 2]\n')
    assert f'{scalars}, line 2' in error_of(str(scalars))

    scalars.write_text(json.dumps(train_line(10, 4.0)) + '\n'
                       + json.dumps(val_line(10, 0.1)) + '\n')
    msg = error_of(str(work), None, ['loss', 'loss_mask'])
    assert '--keys loss_mask' in msg and 'loss_cls' in msg
    msg = error_of(str(work), None, None, 'coco/segm_mAP')
    assert '--metric coco/segm_mAP' in msg and 'coco/bbox_mAP_50' in msg
    msg = error_of(str(work), str(tmp_path / 'c.txt'))
    assert '--out' in msg and '.png' in msg
    assert not (tmp_path / 'c.txt').exists()


def test_cli_error_is_one_line(tmp_path):
    """The tool's form of those errors: one line on stderr, exit status 1,
    no traceback."""
    work = tmp_path / 'work'
    write_run(work, '20240101_120000', [train_line(10, 4.0)])
    proc = run_tool('tools/analysis/plot_curves.py', str(work), '--keys',
                    'loss', 'loss_mask', timeout=120)
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    assert '--keys loss_mask' in lines[0] and 'loss_cls' in lines[0]
    assert not (work / 'curves.png').exists()
