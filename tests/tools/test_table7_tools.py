"""The Table 7 configs, the benchmark, FLOPs and table tools, and what
the table tools call (shufflenet_det.table7.timing, .embedded)."""
import json
import os
import re
import statistics
import time

import numpy as np
import pytest
import torch
from cli_helpers import ROOT, run_tool
from mmengine.config import Config

from shufflenet_det import table7
from shufflenet_det.apis.detector import build_detector
from shufflenet_det.table7 import embedded
from shufflenet_det.table7.timing import TimingSettings, reproduce
from shufflenet_det.utils.inputs import mmdet_batch, synthetic_images


def cell_cfg(family, level):
    return Config.fromfile(
        f'{ROOT}/configs/table7/lighthead_{family}_{level.lower()}.py')


def _fake_clock(monkeypatch, durations):
    """Replace the clock of the benchmark's timing loop: timed run ``i`` of
    model ``m`` (round-robin: A, B, A, B, ...) lasts ``durations[m][i]``
    seconds. Returns a function that checks that every reading was
    taken."""
    from shufflenet_det.benchmark import timing as benchmark
    readings, t = [], 100.0
    for i in range(len(durations[0])):
        for d in durations:
            readings += [t, t + d[i]]  # start, stop
            t += d[i] + 1.0
    readings.reverse()

    class Clock:  # the time module, but for perf_counter
        perf_counter = staticmethod(readings.pop)

        def __getattr__(self, name):
            return getattr(time, name)

    monkeypatch.setattr(benchmark, 'time', Clock())
    return lambda: not readings


def _timing(durations, batch_size):
    """What the table must report for runs that took ``durations``
    seconds: images/s = batch / median, the interquartile range (linear
    interpolation between the order statistics) and the noise flag (the
    IQR not under 10% of the median)."""
    median = statistics.median(durations)
    iqr = float(np.percentile(durations, 75) - np.percentile(durations, 25))
    return dict(images_per_s=batch_size / median, iqr_s=iqr,
                noisy=iqr >= 0.1 * median)


def _write_log(work_dir, stamp, *records, mtime):
    """A work_dir's JSON log (one record a line, as mmengine writes) with
    the modification time ``mtime``."""
    log = work_dir / stamp
    log.mkdir(parents=True)
    path = log / f'{stamp}.json'
    path.write_text(''.join(
        r if isinstance(r, str) else json.dumps(r) + '\n' for r in records))
    os.utime(path, (mtime, mtime))


@pytest.mark.parametrize('family,level', table7.cells())
def test_every_cell_builds_and_predicts(family, level):
    model = build_detector(cell_cfg(family, level))
    assert type(model.backbone).__name__ == table7.backbone_cfg(
        family, level)['type']
    batch = mmdet_batch(synthetic_images(1, (128, 192)))
    with torch.no_grad():
        out = model.test_step(batch)
    assert len(out) == 1
    det = out[0].pred_instances
    assert det.bboxes.shape[1] == 4 and len(det) <= 100


def test_lighthead_v2star_is_the_v2star_140m_cell():
    a = Config.fromfile(f'{ROOT}/configs/lighthead_v2star.py')
    b = cell_cfg('shufflenetv2star', '140M')
    assert a.model == b.model
    assert a.model.backbone.family == 'shufflenetv2star'


def test_base_pipeline_resizes_to_800x1200():
    from mmdet.datasets.transforms import Resize
    cfg = cell_cfg('shufflenetv2', '140M')
    for pipeline in (cfg.train_pipeline, cfg.test_pipeline):
        resize = [t for t in pipeline if t['type'] == 'Resize'][0]
        transform = Resize(**{k: v for k, v in resize.items()
                              if k != 'type'})
        for h, w in ((480, 640), (427, 640), (640, 480), (1000, 3000)):
            out = transform(dict(img=torch.zeros(h, w, 3).numpy()))
            oh, ow = out['img_shape']
            assert max(oh, ow) <= 1200 and min(oh, ow) <= 800
            assert max(oh, ow) == 1200 or min(oh, ow) == 800
    assert cfg.train_dataloader.dataset.ann_file.endswith(
        'instances_train2017.json')
    assert cfg.val_dataloader.dataset.ann_file.endswith(
        'instances_val2017.json')


def test_flops_tool_counts_psroialign_and_large_separable_conv(tmp_path):
    out = tmp_path / 'flops.json'
    proc = run_tool('tools/analysis/flops.py',
                    f'{ROOT}/configs/lighthead_v2star.py', '--shape', '320',
                    '480', '--json', str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    parts = res['by_module']
    # Large separable conv at stride 32 on 320x480 (10x15), C5 = 1024,
    # C_mid 64, C_out 490, k 15: two branches of k x 1 and 1 x k convs.
    hw = 10 * 15
    lsc = 2 * hw * 15 * (1024 * 64 + 64 * 490)
    assert parts['thin_map'] == pytest.approx(lsc, rel=0.01)
    assert 'ps_roi_align' not in ' '.join(res['skipped_ops'])
    assert parts['roi_head'] > 0 and parts['rpn_head'] > 0
    assert res['total'] == pytest.approx(sum(parts.values()), rel=0.01)


def test_table_on_two_cells(tmp_path, monkeypatch, capsys):
    """Images/s and mmAP are the figures the timing and the work_dirs give
    (what tools/table7.py runs, in-process): the clock replaced (median 0.5 s and 2.0 s a batch of 2), the logs
    written with known numbers (the last value logged wins: the newest
    file, its last line)."""
    out, fig = tmp_path / 't7.json', tmp_path / 't7.png'
    work = tmp_path / 'work_dirs'
    v2 = work / 'lighthead_shufflenetv2_40m'
    # The newest file by modification time (here not the last by name).
    _write_log(v2, '20260102_000000', {'coco/bbox_mAP': 0.300},
               mtime=1_000_000)
    _write_log(v2, '20260101_000000', {'coco/bbox_mAP': 0.200},
               'not json\n', {'loss': 1.5}, {'coco/bbox_mAP': 0.215},
               {'lr': 0.01}, mtime=2_000_000)
    _write_log(work / 'lighthead_shufflenetv1_40m', '20260101_000000',
               {'coco/bbox_mAP': 0.187}, mtime=1_000_000)
    durations = [[0.5, 0.25, 1.0], [2.0, 2.0, 2.0]]  # v2, v1
    all_read = _fake_clock(monkeypatch, durations)
    rows = reproduce(TimingSettings(
        device='cpu', iters=3, warmup=1,
        families=['shufflenetv2', 'shufflenetv1'], levels=['40M'],
        shape=[128, 192], batch_size=2, work_dirs=str(work)),
        json_path=str(out), plot_path=str(fig))
    assert all_read()  # 3 timed runs of each cell, round-robin
    stdout = capsys.readouterr().out
    assert json.loads(out.read_text())['rows'] == rows
    assert [(r['family'], r['level']) for r in rows] == [
        ('shufflenetv2', '40M'), ('shufflenetv1', '40M')]
    for row, d in zip(rows, durations):
        assert {k: row[k] for k in ('images_per_s', 'iqr_s', 'noisy')} == \
            pytest.approx(_timing(d, batch_size=2), rel=1e-12)
    assert (rows[0]['images_per_s'], rows[1]['images_per_s']) == (4.0, 1.0)
    assert rows[0]['mmap'] == pytest.approx(21.5, rel=1e-12)
    assert rows[1]['mmap'] == pytest.approx(18.7, rel=1e-12)
    assert (rows[0]['paper_mmap'], rows[1]['paper_mmap']) == (22.5, 20.9)
    # 4.0 / 1.0 images/s; the paper's 188 / 152.
    assert 'ShuffleNet v2 / ShuffleNet v1 speed: 40M 4.00x (paper 1.24x)' \
        in stdout
    assert fig.stat().st_size > 10000


def test_benchmark_tool_with_peer(tmp_path):
    out = tmp_path / 'bench.json'
    proc = run_tool('tools/analysis/benchmark.py',
                    f'{ROOT}/configs/lighthead_v2star.py', '--device', 'cpu',
                    '--shape', '256', '384', '--batch-size', '2', '--iters',
                    '3', '--warmup', '0', '--peer', '--channels-last',
                    '--json', str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(out.read_text())
    res = info['results']
    assert len(res) == 2
    # The figures follow from the three times each run recorded.
    for r in res:
        assert len(r['times']) == 3
        assert {k: r[k] for k in ('images_per_s', 'iqr_s', 'noisy')} == \
            pytest.approx(_timing(r['times'], batch_size=2), rel=1e-6)
        assert r['median_s'] == pytest.approx(statistics.median(r['times']),
                                              rel=1e-6)
    assert all({'median_s', 'iqr_s', 'noisy'} <= r.keys() for r in res)
    assert info['settings']['channels_last'] is True
    assert info['environment']['torch'] == torch.__version__
    assert 'speed ratio (ours / peer)' in proc.stdout


def test_table_tool_one_command_both_precisions(tmp_path):
    """The GPU table's command (--precisions fp32 fp16 --out-dir), checked on
    a CPU with --quick: every cell in each precision, the JSON with the
    device and the settings, the Markdown table and the plot."""
    out = tmp_path / 'table7_gpu'
    proc = run_tool('tools/table7.py', '--device', 'cpu', '--quick',
                    '--precisions', 'fp32', 'fp16', '--channels-last',
                    '--families', 'shufflenetv2', '--levels', '40M',
                    '140M', '--shape', '128', '192', '--batch-size', '1',
                    '--work-dirs', str(tmp_path / 'none'), '--out-dir',
                    str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / 'table7.json').read_text())
    assert [(r['precision'], r['level']) for r in result['rows']] == [
        ('fp32', '40M'), ('fp32', '140M'), ('fp16', '40M'), ('fp16', '140M')]
    env = result['environment']
    assert env['torch'] == torch.__version__ and env['device'] == 'cpu'
    assert {'device_name', 'cuda', 'cudnn', 'mmcv_cuda_ops'} <= env.keys()
    assert result['settings']['precisions'] == ['fp32', 'fp16']
    assert result['settings']['channels_last'] is True
    md = (out / 'table7.md').read_text()
    assert md.count('| ShuffleNet v2 | ') == 2
    assert '**fp32**' in md and '**fp16**' in md and '(188)' in md
    assert (out / 'table7.png').stat().st_size > 10000
    # fp16 timings on a CPU only to check the command.
    proc = run_tool('tools/table7.py', '--device', 'cpu', '--fp16')
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        'error: fp16 is for CUDA devices (on a CPU only with --quick, to '
        'check the command).']


def _text_logged(log_path, key):
    """The last ``key: value`` of a step's text log (what the training
    printed, not the JSON the tool reads)."""
    values = re.findall(rf'{re.escape(key)}: (-?\d+\.\d+)',
                        log_path.read_text())
    assert values, f'{key} not in {log_path}'
    return float(values[-1])


def test_embedded_mini_table_end_to_end_and_resumed(tmp_path, monkeypatch,
                                                    capsys):
    """--embedded --quick: data, pretraining, fine-tuning, evaluation and
    timing of two families, a JSON with both columns; run again, every
    finished step is skipped. In-process (what tools/table7.py --embedded
    runs), with the timing loop's clock replaced: images/s is batch / the
    run's seconds; top-1 and mmAP are what the steps' own text logs
    printed, and, on the second run, what a later evaluation logged with
    known numbers. Then the command itself, in a subprocess, resumes the
    same run."""
    out = tmp_path / 'emb'
    families = ['shufflenetv1', 'mobilenetv2']
    # As tools/table7.py --embedded --quick --out-dir OUT sets it up.
    settings = TimingSettings(
        families=families, levels=['40M'], device='cpu', quick=True,
        shape=[128, 192], batch_size=2, work_dirs=str(out), embedded=True)
    files = dict(json_path=str(out / 'table7.json'),
                 markdown_path=str(out / 'table7.md'),
                 plot_path=str(out / 'table7.png'), embedded_dir=str(out))
    all_read = _fake_clock(monkeypatch, [[0.5], [0.25]])
    rows = reproduce(settings, **files)
    assert all_read()
    log = capsys.readouterr().out
    assert '2 steps at a time' in log  # --jobs: two steps run at once
    assert json.loads((out / 'table7.json').read_text())['rows'] == rows
    assert [(r['family'], r['level']) for r in rows] == [
        ('shufflenetv1', '40M'), ('mobilenetv2', '40M')]
    assert [r['images_per_s'] for r in rows] == [2 / 0.5, 2 / 0.25]
    for r in rows:
        cell = f'{r["family"]}_40m'
        assert r['top1'] == pytest.approx(_text_logged(
            out / f'pretrain_{cell}.log', 'accuracy/top1'), abs=5e-5)
        assert r['mmap'] == pytest.approx(100 * _text_logged(
            out / f'lighthead_{cell}.log', 'coco/bbox_mAP'), abs=5e-3)
    assert [r['paper_mmap'] for r in rows] == [20.9, 20.7]
    assert (out / 'table7.png').is_file()
    # The configs that ran are written out; the V1 cell pretrains on the
    # input its detection config feeds (megvii's BGR, 0-255).
    pre = Config.fromfile(str(out / 'pretrain_shufflenetv1_40m.py'))
    assert pre.data_preprocessor.mean == [0., 0., 0.]
    assert pre.data_preprocessor.to_rgb is False
    ft = Config.fromfile(str(out / 'finetune_shufflenetv1_40m.py'))
    assert ft.model.backbone.init_cfg.checkpoint == str(
        out / 'pretrain_shufflenetv1_40m' / 'iter_2.pth')
    assert ft.optim_wrapper.optimizer.type == 'SGD'
    assert ft.model.train_cfg.rcnn.sampler.type == 'HardestRoISampler'

    # A later evaluation of each step (e.g. tools/test.py) logged in its
    # work_dir: the resumed run reports those numbers.
    later = time.time() + 60
    known = {'shufflenetv1': (87.5, 0.4321), 'mobilenetv2': (62.25, 0.1234)}
    for family, (top1, mmap) in known.items():
        _write_log(out / f'pretrain_{family}_40m', '29990101_000000',
                   {'accuracy/top1': top1}, mtime=later)
        _write_log(out / f'lighthead_{family}_40m', '29990101_000000',
                   {'coco/bbox_mAP': mmap}, mtime=later)
    all_read = _fake_clock(monkeypatch, [[1.0], [2.0]])
    rows = reproduce(settings, **files)
    assert all_read()
    log = capsys.readouterr().out
    assert 'pretrain: ' not in log and 'fine-tune: ' not in log  # skipped
    assert [(r['family'], r['images_per_s'], r['top1'], r['mmap'])
            for r in rows] == [
        ('shufflenetv1', 2.0, 87.5, pytest.approx(43.21, rel=1e-12)),
        ('mobilenetv2', 1.0, 62.25, pytest.approx(12.34, rel=1e-12))]

    # The command: level 40M by default, the work_dirs and the three files
    # in --out-dir; every step found finished.
    (out / 'table7.json').unlink()
    proc = run_tool('tools/table7.py', '--embedded', '--quick', '--device',
                    'cpu', '--families', *families, '--shape', '128', '192',
                    '--batch-size', '2', '--out-dir', str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'pretrain: ' not in proc.stdout
    assert 'fine-tune: ' not in proc.stdout
    result = json.loads((out / 'table7.json').read_text())
    assert result['settings']['embedded'] is True
    assert [(r['family'], r['level'], r['top1'], r['mmap'])
            for r in result['rows']] == [
        ('shufflenetv1', '40M', 87.5, pytest.approx(43.21, rel=1e-12)),
        ('mobilenetv2', '40M', 62.25, pytest.approx(12.34, rel=1e-12))]
    assert 'top-1 87.5' in (out / 'table7.md').read_text()


def test_embedded_schedule_order_threads_and_failures(monkeypatch, tmp_path):
    """--jobs 2: every pretraining first, slowest family first; a
    fine-tuning only after its backbone; one thread a step and all cores
    for the last; a failed pretraining skips its fine-tuning, the other
    families go on, and the run names the failure at the end."""
    import threading
    import time
    te = embedded

    events, lock = [], threading.Lock()

    class FakeCell:
        def __init__(self, family, level, out_dir, quick=False):
            self.family = family

        def pretrained(self):
            return False

        def finetuned(self):
            return False

        def _step(self, kind, threads):
            with lock:
                events.append(('start', kind, self.family, threads))
            time.sleep(0.05)
            if kind == 'pretrain' and self.family == 'xception':
                raise RuntimeError('Xception 40M pretrain failed (exit 1)')
            with lock:
                events.append(('end', kind, self.family, threads))

        def pretrain(self, threads=None):
            self._step('pretrain', threads)

        def finetune(self, threads=None):
            self._step('finetune', threads)

        def collect(self):
            return {}

    monkeypatch.setattr(te, 'Cell', FakeCell)
    monkeypatch.setattr(te, 'make_data', lambda *a, **k: None)
    monkeypatch.setattr(te.os, 'cpu_count', lambda: 2)
    families = ['shufflenetv2', 'xception', 'mobilenetv2']
    with pytest.raises(RuntimeError, match='Xception 40M pretrain failed'):
        te.run(families, ['40M'], str(tmp_path), jobs=2)
    starts = [e[1:] for e in events if e[0] == 'start']
    assert [s[:2] for s in starts[:3]] == [
        ('pretrain', 'mobilenetv2'), ('pretrain', 'xception'),
        ('pretrain', 'shufflenetv2')]
    assert ('finetune', 'xception') not in [s[:2] for s in starts]
    for family in ('mobilenetv2', 'shufflenetv2'):
        assert events.index(('end', 'pretrain', family, 1)) < [
            e[1:3] for e in events].index(('finetune', family))
    assert [s[2] for s in starts[:-1]] == [1] * (len(starts) - 1)
    assert starts[-1][2] is None  # the last step: every core
