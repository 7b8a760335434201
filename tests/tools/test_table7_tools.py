"""The Table 7 configs, the benchmark, FLOPs and table tools."""
import json

import pytest
import torch
from cli_helpers import ROOT, run_tool
from mmengine.config import Config

from shufflenet_det import table7
from shufflenet_det.utils.benchmark import (build_detector, mmdet_batch,
                                            synthetic_images)


def cell_cfg(family, level):
    return Config.fromfile(
        f'{ROOT}/configs/table7/lighthead_{family}_{level.lower()}.py')


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


def test_table_tool_quick_on_two_cells(tmp_path):
    out, fig = tmp_path / 't7.json', tmp_path / 't7.png'
    work = tmp_path / 'work_dirs'
    # A fake evaluated cell: its logged COCO mAP is read back.
    log = work / 'lighthead_shufflenetv2_40m' / '20260101_000000'
    log.mkdir(parents=True)
    (log / '20260101_000000.json').write_text(
        json.dumps({'coco/bbox_mAP': 0.215}) + '\n')
    proc = run_tool('tools/table7.py', '--quick', '--device', 'cpu',
                    '--families', 'shufflenetv2', 'shufflenetv1',
                    '--levels', '40M', '--shape', '256', '384',
                    '--batch-size', '1', '--work-dirs', str(work), '--json',
                    str(out), '--plot', str(fig))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())['rows']
    assert [(r['family'], r['level']) for r in rows] == [
        ('shufflenetv2', '40M'), ('shufflenetv1', '40M')]
    assert all(r['images_per_s'] > 0 for r in rows)
    assert rows[0]['mmap'] == pytest.approx(21.5)
    assert rows[0]['paper_mmap'] == 22.5 and rows[1]['mmap'] is None
    assert 'ShuffleNet v2 / ShuffleNet v1 speed' in proc.stdout
    assert fig.stat().st_size > 10000


def test_benchmark_tool_with_peer(tmp_path):
    out = tmp_path / 'bench.json'
    proc = run_tool('tools/analysis/benchmark.py',
                    f'{ROOT}/configs/lighthead_v2star.py', '--device', 'cpu',
                    '--shape', '256', '384', '--batch-size', '1', '--iters',
                    '1', '--warmup', '0', '--peer', '--channels-last',
                    '--json', str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(out.read_text())
    res = info['results']
    assert len(res) == 2 and all(r['images_per_s'] > 0 for r in res)
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


def test_embedded_mini_table_end_to_end_and_resumed(tmp_path):
    """--embedded --quick: data, pretraining, fine-tuning, evaluation and
    timing of two families, a JSON with both columns; run again, every
    finished step is skipped."""
    out = tmp_path / 'emb'
    args = ('tools/table7.py', '--embedded', '--quick', '--device', 'cpu',
            '--families', 'shufflenetv1', 'mobilenetv2', '--shape', '128',
            '192', '--batch-size', '1', '--out-dir', str(out))
    proc = run_tool(*args)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert '2 steps at a time' in log  # --jobs: two steps run at once
    rows = json.loads((out / 'table7.json').read_text())['rows']
    assert [(r['family'], r['level']) for r in rows] == [
        ('shufflenetv1', '40M'), ('mobilenetv2', '40M')]
    for r in rows:
        assert r['images_per_s'] > 0 and 0 <= r['mmap'] <= 100
        assert 0 <= r['top1'] <= 100 and r['paper_mmap'] > 0
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

    proc = run_tool(*args)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert 'pretrain: ' not in log and 'fine-tune: ' not in log  # skipped


def test_embedded_schedule_order_threads_and_failures(monkeypatch, tmp_path):
    """--jobs 2: every pretraining first, slowest family first; a
    fine-tuning only after its backbone; one thread a step and all cores
    for the last; a failed pretraining skips its fine-tuning, the other
    families go on, and the run names the failure at the end."""
    import sys
    import threading
    import time
    sys.path.insert(0, f'{ROOT}/tools')
    import table7_embedded as te

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

    monkeypatch.setattr(te, '_Cell', FakeCell)
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
