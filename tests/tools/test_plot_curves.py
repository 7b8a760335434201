"""tools/analysis/plot_curves.py: the series it computes from mmengine's
scalars.json (resumed runs joined, minutes from the 'time' field, validation
placed on the iteration axis), the PNG, and its one-line errors."""
import importlib.util
import json
import os.path as osp

import pytest
from cli_helpers import ROOT, run_tool

spec = importlib.util.spec_from_file_location(
    'plot_curves', osp.join(ROOT, 'tools', 'analysis', 'plot_curves.py'))
plot_curves = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_curves)


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
    curves, files = plot_curves.load_curves(str(resumed_work_dir))
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
    assert plot_curves.loss_keys(curves) == [
        'loss', 'loss_bbox', 'loss_cls', 'loss_rpn_cls']


def test_epoch_based_validation_is_placed_at_the_last_logged_iteration():
    # LoggerHook(log_metric_by_epoch=True): validation's step is the epoch.
    run = [train_line(10, 3.0, epoch=1), train_line(20, 2.0, epoch=1),
           val_line(1, 0.004), train_line(30, 1.5, epoch=2),
           val_line(2, 0.012)]
    curves = plot_curves.build_curves([run])
    assert curves['val']['iter'] == [20, 30]
    assert curves['val']['value'] == [0.004, 0.012]
    # log_with_hierarchy=True prefixes the keys with train/ and val/.
    run = [{f'train/{k}': v for k, v in train_line(5, 1.0).items()}]
    assert plot_curves.build_curves([run])['train']['loss'] == [1.0]


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


def test_run_folder_file_keys_metric_and_out(resumed_work_dir, tmp_path,
                                             capsys):
    run_dir = resumed_work_dir / '20240101_120000'
    plot_curves.main([str(run_dir)])
    assert (run_dir / 'curves.png').stat().st_size > 0
    out = tmp_path / 'sub' / 'c.png'
    scalars = run_dir / 'vis_data' / 'scalars.json'
    curves = plot_curves.main([str(scalars), '--out', str(out), '--keys',
                               'loss', 'loss_cls', '--metric',
                               'coco/bbox_mAP_50'])
    assert out.stat().st_size > 0
    assert curves['val']['value'] == [0.020]
    assert 'last coco/bbox_mAP_50 0.020 at iteration 30' in \
        capsys.readouterr().out


def test_no_validation_yet(tmp_path, capsys):
    work = tmp_path / 'work'
    write_run(work, '20240101_120000', [train_line(10, 4.0)])
    plot_curves.main([str(work)])
    assert 'no coco/bbox_mAP yet' in capsys.readouterr().out
    assert (work / 'curves.png').stat().st_size > 0


def test_incomplete_last_line_is_left_out(tmp_path, capsys):
    work = tmp_path / 'work'
    write_run(work, '20240101_120000', [train_line(10, 4.0)],
              tail='{"lr": 0.01, "loss": 3.')
    curves = plot_curves.main([str(work)])
    assert curves['train']['iter'] == [10]
    assert 'line 2: incomplete last line left out' in capsys.readouterr().err


def error_of(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        plot_curves.main(list(argv))
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    return lines[0]


def test_errors(tmp_path, capsys):
    work = tmp_path / 'work'
    work.mkdir()
    msg = error_of(capsys, str(work))
    assert str(work) in msg and 'no scalars.json' in msg
    msg = error_of(capsys, str(tmp_path / 'nowhere'))
    assert 'no such file or directory' in msg

    scalars = write_run(work, '20240101_120000', [])
    msg = error_of(capsys, str(work))
    assert str(scalars) in msg and 'empty' in msg

    scalars.write_text(json.dumps(train_line(10, 4.0)) + '\n'
                       '{"loss": 3.0, "iter": \n'
                       + json.dumps(train_line(30, 2.0)) + '\n')
    msg = error_of(capsys, str(work))
    assert f'{scalars}, line 2' in msg and 'not a JSON object' in msg

    scalars.write_text(json.dumps(train_line(10, 4.0)) + '\n[1, 2]\n')
    assert f'{scalars}, line 2' in error_of(capsys, str(scalars))

    scalars.write_text(json.dumps(train_line(10, 4.0)) + '\n'
                       + json.dumps(val_line(10, 0.1)) + '\n')
    msg = error_of(capsys, str(work), '--keys', 'loss', 'loss_mask')
    assert '--keys loss_mask' in msg and 'loss_cls' in msg
    msg = error_of(capsys, str(work), '--metric', 'coco/segm_mAP')
    assert '--metric coco/segm_mAP' in msg and 'coco/bbox_mAP_50' in msg
    msg = error_of(capsys, str(work), '--out', str(tmp_path / 'c.txt'))
    assert '--out' in msg and '.png' in msg
