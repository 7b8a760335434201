"""Where an exported graph's time goes in ONNX Runtime and in OpenVINO:
each runtime's own per-node profile (ONNX Runtime's
``SessionOptions.enable_profiling``, OpenVINO's ``PERF_COUNT``), summed by
part of the detector (:data:`~.quantize.PARTS`, the node-name prefixes;
PSRoIAlign's ``RoiAlign`` and the ``NonMaxSuppression`` s on their own; the
rest is the normalisation and the box arithmetic, sorting and gathering
around them) and by operator (OpenVINO's with the kernel that ran it, e.g.
``Convolution jit_avx2_I8``: what tells an int8 kernel from a reference
one). Node times are kernel times: what the threads spend in each
operator, without the session's overhead between them.
"""
import glob
import json
import os
import os.path as osp
import tempfile
from collections import defaultdict

from .openvino import GRID_SAMPLE_MARK
from .quantize import PARTS, part_of

OPS_ON_THEIR_OWN = {'RoiAlign': 'PSRoIAlign (RoiAlign)',
                    'NonMaxSuppression': 'NMS'}
LAYOUT = 'layout changes (NCHWc, NHWC)'
REST = 'rest (normalisation, boxes, top-k)'


def node_part(name, op):
    """The part of a node of the optimised graph. ONNX Runtime keeps the
    exported names, prefixed ``fused `` where it fused nodes; the
    Quantize/DequantizeLinear nodes are named after their tensors, so
    after the part that makes them. The layout conversions it inserts
    (``ReorderInput``/``ReorderOutput`` for fp32's NCHWc kernels, unnamed
    ``Transpose`` s for int8's NHWC ones) are a part of their own."""
    if name.startswith('fused '):
        name = name[len('fused '):]
    part = part_of(name)
    if part:
        return part
    if op in ('ReorderInput', 'ReorderOutput') or (
            op == 'Transpose' and not name.startswith('/')):
        return LAYOUT
    return OPS_ON_THEIR_OWN.get(op, REST)


#: OpenVINO's node types that are a part of their own, whatever their name.
OV_OPS_ON_THEIR_OWN = {'ROIAlign': 'PSRoIAlign (RoiAlign)',
                       'NonMaxSuppression': 'NMS', 'Reorder': LAYOUT}


def ov_node_part(name, node_type):
    """The part of a node of OpenVINO's execution graph. Its nodes keep
    the exported names (a fused node the name of its first), so the parts'
    prefixes find them, except the RoIAlign, the NMS and the ``Reorder`` s
    (layout and precision changes OpenVINO inserts), by their type, and
    the nodes that stand for the RoIAlign (:func:`~.openvino.
    roi_align_as_grid_sample`), by their name."""
    if GRID_SAMPLE_MARK in name:
        return OV_OPS_ON_THEIR_OWN['ROIAlign']
    return OV_OPS_ON_THEIR_OWN.get(node_type) or part_of(name, REST)


def profile_openvino(path, feeds, threads=None, runs=3, precision='f32'):
    """Profile ``runs`` runs in OpenVINO of the graph at ``path`` (.onnx,
    or an int8 IR) on ``feeds`` (after one untimed run), compiled as the
    benchmark compiles it (:func:`~.openvino.ov_compile`, ``precision``)
    with ``PERF_COUNT``. Returns what :func:`profile_session` returns; the
    ``ops`` are keyed by node type and kernel."""
    from .openvino import ov_compile
    session = ov_compile(path, precision, threads, perf_count=True)
    session.run(None, feeds)
    parts, ops = defaultdict(float), defaultdict(float)
    for _ in range(runs):
        session.run(None, feeds)
        for info in session.request.get_profiling_info():
            if info.status != info.Status.EXECUTED:
                continue
            ms = info.real_time.total_seconds() * 1000 / runs
            parts[ov_node_part(info.node_name, info.node_type)] += ms
            ops[f'{info.node_type} {info.exec_type}'] += ms
    return dict(parts=dict(parts), ops=dict(ops),
                total_ms=sum(parts.values()), runs=runs)


def profile_session(path, feeds, threads=None, runs=3):
    """Profile ``runs`` runs of the graph at ``path`` on ``feeds`` (after
    one untimed run). Returns ``dict(parts={part: ms per run}, ops={op:
    ms per run}, total_ms=...)``, the kernel times averaged over the
    runs."""
    import onnxruntime as ort
    with tempfile.TemporaryDirectory(prefix='ort_profile_') as tmp:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        if threads:
            opts.intra_op_num_threads = threads
        opts.enable_profiling = True
        opts.profile_file_prefix = osp.join(tmp, 'profile')
        session = ort.InferenceSession(path, opts,
                                       providers=['CPUExecutionProvider'])
        for _ in range(runs + 1):
            session.run(None, feeds)
        trace = session.end_profiling()
        if not osp.isabs(trace):  # older versions: relative to the cwd
            trace = max(glob.glob(osp.join(tmp, '*.json'))
                        + [trace], key=os.path.getmtime)
        with open(trace) as f:
            events = json.load(f)
    model_runs = sorted((e for e in events if e.get('name') == 'model_run'),
                        key=lambda e: e['ts'])
    # The first run (warm-up) ends where the second begins.
    first_end = model_runs[0]['ts'] + model_runs[0]['dur']
    parts, ops = defaultdict(float), defaultdict(float)
    for e in events:
        if e.get('cat') != 'Node' or not e['name'].endswith('_kernel_time'):
            continue
        if e['ts'] < first_end:
            continue
        name = e['name'][:-len('_kernel_time')]
        op = e.get('args', {}).get('op_name', '?')
        ms = e['dur'] / 1000 / runs
        parts[node_part(name, op)] += ms
        ops[op] += ms
    return dict(parts=dict(parts), ops=dict(ops),
                total_ms=sum(parts.values()), runs=runs)


def format_profiles(profiles, top_ops=8):
    """Side by side, one column per profile (``{name: profile}``): ms per
    run of each part, and each profile's ``top_ops`` costliest
    operators."""
    names = list(profiles)
    order = list(PARTS) + list(OPS_ON_THEIR_OWN.values()) + [LAYOUT, REST]
    width = max(len(p) for p in order)
    lines = [f'{"part":<{width}} '
             + ' '.join(f'{n:>18}' for n in names)]
    for part in order + ['total']:
        values = [profiles[n]['total_ms'] if part == 'total' else
                  profiles[n]['parts'].get(part, 0.0) for n in names]
        lines.append(f'{part:<{width}} '
                     + ' '.join(f'{v:>18.1f}' for v in values))
    for n in names:
        ops = sorted(profiles[n]['ops'].items(), key=lambda kv: -kv[1])
        lines.append(f'{n}, costliest operators: ' + ', '.join(
            f'{op} {ms:.1f}' for op, ms in ops[:top_ops]))
    return '\n'.join(lines)
