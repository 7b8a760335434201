"""tools/analysis/benchmark.py --backend pytorch pytorch-as-built
onnxruntime (with the peer, in one run), onnxruntime-int8, openvino and
openvino-int8 with both runtimes' profiles (--profile), and
tools/analysis/lighthead_profile.py with BatchNorm folding and
channels-last (and side by side with the model as built: --compare), on
small images."""
import json
import re
import subprocess
import sys

import pytest
from deploy_helpers import ROOT

pytest.importorskip('onnxruntime')
CONFIG = f'{ROOT}/configs/table7/lighthead_shufflenetv2_40m.py'


def run_tool(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_benchmark_both_backends_and_the_peer(tmp_path):
    out = tmp_path / 'bench.json'
    proc = run_tool('tools/analysis/benchmark.py', CONFIG, '--device', 'cpu',
                    '--shape', '200', '300', '--batch-size', '2', '--iters',
                    '1', '--warmup', '0', '--threads', '1', '--peer',
                    '--backend', 'pytorch', 'pytorch-as-built', 'onnxruntime',
                    '--json', str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(out.read_text())
    res = info['results']
    assert [r['backend'] for r in res] == [
        'pytorch', 'pytorch-as-built', 'onnxruntime', 'pytorch']
    assert res[1]['name'].endswith('(as built)')
    assert res[2]['name'].endswith('(ONNX Runtime)')
    assert all(r['images_per_s'] > 0 for r in res)
    assert info['settings']['backends'] == ['pytorch', 'pytorch-as-built',
                                            'onnxruntime']
    rewrites = info['settings']['pytorch_rewrites']
    assert rewrites['batchnorm_folded'] > 0 and rewrites['channels_last']
    assert 'ours in PyTorch: BatchNorm folded, channels-last' in proc.stdout
    assert 'speed ratio (ours / peer): ' in proc.stdout
    assert ('x (PyTorch), ' in proc.stdout and 'x (PyTorch as built), ' in
            proc.stdout and 'x (ONNX Runtime)' in proc.stdout)
    # The CPU flags that int8 and bf16 speed depend on, in the JSON and on
    # the device line.
    features = info['environment']['cpu_features']
    with open('/proc/cpuinfo') as f:
        flags = f.read().split()
    for flag in ('avx2', 'avx512_vnni', 'avx512_bf16', 'amx_int8'):
        assert (flag in features) == (flag in flags), flag
    assert f'; {" ".join(features)})' in proc.stdout


def test_benchmark_int8_and_its_profile(tmp_path):
    out = tmp_path / 'bench.json'
    proc = run_tool('tools/analysis/benchmark.py', CONFIG, '--device', 'cpu',
                    '--shape', '200', '300', '--batch-size', '2', '--iters',
                    '1', '--warmup', '0', '--threads', '1', '--backend',
                    'onnxruntime', 'onnxruntime-int8', 'openvino',
                    'openvino-int8', '--profile', '--json', str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(out.read_text())
    res = info['results']
    kinds = ['onnxruntime', 'onnxruntime-int8', 'openvino', 'openvino-int8']
    assert [r['backend'] for r in res] == kinds
    assert res[1]['name'].endswith('(ONNX Runtime int8)')
    assert all(r['images_per_s'] > 0 for r in res)
    profiles = info['profiles']
    assert set(profiles) == set(kinds)
    # int8 kernels in the int8 graphs' profiles, none in fp32's: ONNX
    # Runtime's QLinearConv, OpenVINO's convolutions run by an int8 kernel
    # (the node type, then the kernel: 'Convolution jit_avx2_I8').
    assert 'QLinearConv' in profiles['onnxruntime-int8']['ops']
    assert 'QLinearConv' not in profiles['onnxruntime']['ops']

    def ov_int8_convs(kind):
        return [op for op in profiles[kind]['ops']
                if op.startswith('Convolution ') and op.endswith('I8')]
    assert ov_int8_convs('openvino-int8') and not ov_int8_convs('openvino')
    for kind in kinds:
        for part in ('backbone', 'thin_map', 'rpn_head', 'rcnn_fcs',
                     'PSRoIAlign (RoiAlign)', 'NMS'):
            assert profiles[kind]['parts'][part] > 0, (kind, part)
    for part in ('PSRoIAlign (RoiAlign)', 'NMS', 'OpenVINO int8'):
        assert part in proc.stdout


def test_lighthead_profile_compare():
    """The model as built and rewritten, side by side."""
    proc = run_tool('tools/analysis/lighthead_profile.py', CONFIG,
                    '--shape', '128', '192', '--batch-size', '1', '--iters',
                    '2', '--warmup', '0', '--threads', '1', '--compare',
                    '--stat', 'min')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ('as built vs BatchNorm folded, channels_last, min of 2 runs'
            in proc.stdout)
    assert 'speed-up' in proc.stdout
    for stage in ('backbone', 'thin map', 'RPN post-processing',
                  'R-CNN (PSRoIAlign + fcs)', 'total'):
        assert stage in proc.stdout


def test_benchmark_onnxruntime_and_openvino(tmp_path):
    """Both runtimes in one run, OpenVINO's precision in its row and the
    JSON (read back), the percentiles with --latency."""
    pytest.importorskip('openvino')
    out = tmp_path / 'bench.json'
    proc = run_tool('tools/analysis/benchmark.py', CONFIG, '--device', 'cpu',
                    '--shape', '200', '300', '--batch-size', '1', '--iters',
                    '2', '--warmup', '0', '--threads', '1', '--backend',
                    'onnxruntime', 'openvino', '--latency', '--json',
                    str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(out.read_text())
    res = info['results']
    assert [r['backend'] for r in res] == ['onnxruntime', 'openvino']
    assert res[0]['name'].endswith('(ONNX Runtime)')
    assert res[1]['name'].endswith('(OpenVINO f32)')
    assert res[1]['precision'] == 'f32' and 'precision' not in res[0]
    assert info['settings']['ov_precision'] == 'f32'
    for r in res:
        assert r['images_per_s'] > 0
        assert min(r['times']) <= r['p50_s'] <= r['p95_s'] <= max(r['times'])
        assert r['p50_s'] == pytest.approx(r['median_s'])
    header = next(line for line in proc.stdout.splitlines()
                  if line.startswith('model '))
    assert header.split()[-4:] == ['p50', 'ms', 'p95', 'ms']
    row = next(line for line in proc.stdout.splitlines()
               if '(OpenVINO f32)' in line)
    # images/s, ms/batch, peak MiB, p50 ms, p95 ms
    columns = re.findall(r'[\d.]+', row.split('(OpenVINO f32)')[1])[:5]
    assert float(columns[4]) == pytest.approx(1000 * res[1]['p95_s'],
                                              abs=0.06)


def test_benchmark_openvino_bf16_refused_in_one_line():
    """bf16 on a CPU without it: the backend's message, before any model is
    built."""
    pytest.importorskip('openvino')
    from shufflenet_det.deploy.openvino import ov_core
    if 'BF16' in ov_core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES'):
        pytest.skip('this CPU runs bf16')
    proc = run_tool('tools/analysis/benchmark.py', CONFIG, '--device', 'cpu',
                    '--backend', 'openvino', '--ov-precision', 'bf16')
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(
        'error: bf16 asked, but this CPU'), proc.stderr
    assert 'run with precision f32' in proc.stderr


def test_benchmark_openvino_bf16_beside_f32(tmp_path):
    """--backend openvino openvino-bf16: the same graph at both precisions
    in one run, each row naming the precision read back; on a CPU without
    bf16, refused in one line before anything is exported."""
    pytest.importorskip('openvino')
    from shufflenet_det.deploy.openvino import ov_core
    out = tmp_path / 'bench.json'
    proc = run_tool('tools/analysis/benchmark.py', CONFIG, '--device', 'cpu',
                    '--shape', '200', '300', '--batch-size', '1', '--iters',
                    '1', '--warmup', '0', '--threads', '1', '--backend',
                    'openvino', 'openvino-bf16', '--json', str(out))
    if 'BF16' not in ov_core().get_property('CPU',
                                            'OPTIMIZATION_CAPABILITIES'):
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines()[-1].startswith(
            'error: bf16 asked, but this CPU'), proc.stderr
        assert not out.exists()
        return
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())['results']
    assert [r['backend'] for r in res] == ['openvino', 'openvino-bf16']
    assert [r['precision'] for r in res] == ['f32', 'bf16']
    assert res[0]['name'].endswith('(OpenVINO f32)')
    assert res[1]['name'].endswith('(OpenVINO bf16)')
