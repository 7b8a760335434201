"""Classification FLOPs (shufflenet_det.benchmark.complexity) and backbone
speed (shufflenet_det.benchmark.backbone) of a few Table 7 cells, and
tools/analysis/backbone_flops.py and backbone_speed.py on the command
line."""
import json

import torch
from cli_helpers import run_tool

import shufflenet_det  # noqa: F401
from mmdet.registry import MODELS
from shufflenet_det import table7
from shufflenet_det.benchmark.backbone import (PEER, speed_row,
                                               time_backbones)
from shufflenet_det.benchmark.complexity import count_backbones


def test_count_backbones_match_the_paper():
    cells = [('mobilenetv2', '40M'), ('shufflenetv2star', '40M')]
    cfgs = [table7.backbone_cfg(f, lv, detection=False) for f, lv in cells]
    for (family, level), (mflops, params) in zip(cells,
                                                 count_backbones(cfgs)):
        paper = table7.paper(family, level)['mflops']
        assert abs(mflops / paper - 1) < 0.05
        assert 0.5 < params < 3


def test_flops_json_fields_and_table(tmp_path):
    out = tmp_path / 'flops.json'
    proc = run_tool('tools/analysis/backbone_flops.py', '--families',
                    'mobilenetv2', 'shufflenetv2star', '--levels', '40M',
                    '--json', str(out), '--check')
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = proc.stdout
    assert '2/2 cells within 5%' in printed
    assert 'gives no FLOPs for v2*' in printed  # the V2* note
    rows = json.loads(out.read_text())
    assert [(r['family'], r['level']) for r in rows] == [
        ('mobilenetv2', '40M'), ('shufflenetv2star', '40M')]
    for row in rows:
        assert set(row) == {'family', 'level', 'backbone', 'mflops',
                            'paper_mflops', 'params_m'}
        assert row['paper_mflops'] == table7.paper(row['family'],
                                                   row['level'])['mflops']
        assert abs(row['mflops'] / row['paper_mflops'] - 1) < 0.05
        assert 0.5 < row['params_m'] < 3
        # the config builds the counted network, deepest feature included
        model = MODELS.build(row['backbone'])
        c5 = table7.cell(row['family'], row['level'])['c5_index']
        assert model.out_indices == (c5, )
    assert rows[0]['backbone'] == dict(type='MobileNetV2Paper',
                                       widen_factor=0.15, divisor=10,
                                       out_indices=[7])


def test_flops_check_fails_beyond_the_tolerance():
    # 41.5 vs 40 is 3.7% off
    proc = run_tool('tools/analysis/backbone_flops.py', '--families',
                    'xception', '--levels', '40M', '--tolerance', '0.01',
                    '--check')
    assert proc.returncode == 1
    assert 'off the paper' in proc.stdout


def test_time_backbones_round_robin():
    """Each model's timed runs, one per round; the rounds logged."""
    calls, logged = [], []

    class Model(torch.nn.Module):

        def __init__(self, name):
            super().__init__()
            self.name = name

        def forward(self, x):
            calls.append(self.name)
            return x

    models = {'a': Model('a'), 'b': Model('b')}
    times = time_backbones(models, torch.zeros(1), iters=3, warmup=2,
                           device=torch.device('cpu'), log=logged.append)
    assert [len(t) for t in times.values()] == [3, 3]
    assert calls[-6:] == ['a', 'b'] * 3  # the timed rounds alternate
    assert len(calls) == 2 * 2 + 6
    assert logged[-1] == 'round 5/5 (timed) done'
    row = speed_row([0.5, 0.25, 1.0], 2, peer_times=[1.0, 1.0])
    assert row['median_s'] == 0.5 and row['images_per_s'] == 4.0
    assert row['ratio_to_peer'] == 2.0
    assert speed_row([0.5], 2)['ratio_to_peer'] is None


def test_speed_tool_runs_standalone(tmp_path):
    out = tmp_path / 'speed.json'
    proc = run_tool('tools/analysis/backbone_speed.py', '--families',
                    'shufflenetv2', '--shape', '64', '96', '--batch-size',
                    '1', '--iters', '1', '--warmup', '0', '--threads', '1',
                    '--json', str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    names = [r['name'] for r in res['results']]
    assert names == ['ShuffleNet v2', PEER]
    ours, peer = res['results']
    assert ours['backbone']['out_indices'] == [1, 3]  # detection form
    assert peer['ratio_to_peer'] == 1.0 and ours['images_per_s'] > 0
    assert res['meta']['shape'] == [64, 96]
    for col in ('backbone', 'median s', 'images/s', 'vs peer', 'paper GPU*'):
        assert col in proc.stdout
    assert len(ours['times_s']) == 1

