"""tools/analysis/speed_table.py: two detectors, each at its own size (a
ThunderNet and the demo's Light-Head R-CNN), in PyTorch and both graph
runtimes, on one thread, with one command; the sizes it is given, and the
errors it stops with."""
import json

import pytest
from cli_helpers import run_tool

from shufflenet_det.benchmark.detector import BenchmarkError
from shufflenet_det.benchmark.speed_table import parse_entry

THUNDERNET = 'configs/thundernet/thundernet_snet49_coco.py'
LIGHTHEAD = 'configs/demo/lighthead_v2star_shapes.py'


def test_parse_entry():
    assert parse_entry('a.py@320x240') == ('a.py', (320, 240))
    assert parse_entry('a.py', (800, 1200)) == ('a.py', (800, 1200))
    for bad in ('a.py@320', 'a.py@0x32', 'a.py@wide'):
        with pytest.raises(BenchmarkError, match='CONFIG@HxW'):
            parse_entry(bad)


def test_two_detectors_at_their_sizes(tmp_path):
    pytest.importorskip('onnxruntime')
    pytest.importorskip('openvino')
    out, md = tmp_path / 'rows.json', tmp_path / 'table.md'
    proc = run_tool('tools/analysis/speed_table.py', f'{THUNDERNET}@160x160',
                    f'{LIGHTHEAD}@128x160', '--backend', 'pytorch',
                    'onnxruntime', 'openvino', '--threads', '1', '--iters',
                    '1', '--warmup', '0', '--cfg-options',
                    'model.test_cfg.rcnn.nms.type=nms', '--json', str(out),
                    '--markdown', str(md))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())['rows']
    assert [(r['config'], r['shape'], r['backend']) for r in rows] == [
        (c, s, b) for c, s in ((THUNDERNET, [160, 160]),
                               (LIGHTHEAD, [128, 160]))
        for b in ('pytorch', 'onnxruntime', 'openvino')]
    assert all(r['threads'] == 1 and r['p50_ms'] > 0 for r in rows)
    assert rows[2]['label'] == 'OpenVINO f32'
    table = md.read_text()
    assert '| thundernet_snet49_coco | 160x160 | 1 | OpenVINO f32 |' in table
    assert '| lighthead_v2star_shapes | 128x160 | 1 | PyTorch |' in table


def test_errors(tmp_path):
    proc = run_tool('tools/analysis/speed_table.py', f'{THUNDERNET}@320',
                    '--threads', '1')
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (
        f'error: {THUNDERNET}@320: give the input size as CONFIG@HxW '
        f'(e.g. {THUNDERNET}@320x320)')
    proc = run_tool('tools/analysis/speed_table.py', 'configs/none.py')
    assert proc.stderr.strip().splitlines()[-1] == (
        'error: configs/none.py: no such config')
