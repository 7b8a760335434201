"""The OpenVINO backend (shufflenet_det.deploy.openvino): the exported graph
of a seeded detector (deploy_helpers.py) on the tiny shapes set at
300x397 (not a multiple of 32: graph_feeds pads to 320x416 and gives each
image's size) gives in OpenVINO f32 the detections of ONNX Runtime and of
PyTorch; the precision is set, read back, and bf16 is refused where the
CPU has none; the int8 IR of NNCF quantises the four parts and nothing
else, carries the metadata and keeps the interface.

int8 accuracy is not asserted here: this seeded model has near-tied scores
everywhere (test_quantize_onnx.py says why); the learning test
(tests/models/test_learning/test_overfit.py) asserts it on a trained
model."""
import os

import numpy as np
import pytest
import torch
from deploy_helpers import (as_batch, exported_shapes_graph, mmdet_detections,
                            table7_config)

from shufflenet_det.deploy import DeployError, ort_session
from shufflenet_det.deploy.export import read_metadata
from shufflenet_det.deploy.parity import match_detections

ov = pytest.importorskip('openvino', reason='openvino is not installed '
                         '(pip install -e .[deploy])')
pytest.importorskip('onnxruntime')
from shufflenet_det.deploy.openvino import ov_core  # noqa: E402

BASE = table7_config('shufflenetv2', '40m')
SHAPE = (300, 397)


@pytest.fixture(scope='module')
def exported(tmp_path_factory, shapes_root, shapes_val):
    """The config, the seeded detector and its --dynamic fp32 graph."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield exported_shapes_graph(tmp_path_factory.mktemp('ov'), shapes_root,
                                shapes_val, BASE, SHAPE)
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def feeds(exported, shapes_root):
    """The four val images through the config's test pipeline (300x397),
    as the graph's feeds: padded to 320x416, their sizes as img_shape."""
    from mmengine.config import Config

    from shufflenet_det.deploy.inputs import (config_fill, graph_feeds,
                                              pipeline_images)
    cfg = Config.fromfile(exported[0])
    paths = sorted(str(p) for p in (shapes_root / 'val').iterdir())
    images = list(pipeline_images(cfg, paths))
    out = graph_feeds(images, config_fill(cfg))
    assert out['input'].shape == (4, 3, 320, 416)
    assert (out['img_shape'] == SHAPE).all()
    return out


def test_f32_matches_onnxruntime_and_pytorch(exported, feeds, shapes_val):
    from shufflenet_det.deploy.openvino import ov_compile
    _, model, path = exported
    session = ov_compile(path, threads=1)
    assert [i.name for i in session.get_inputs()] == ['input', 'img_shape']
    assert [o.name for o in session.get_outputs()] == ['dets', 'labels']
    dets, labels = session.run(None, feeds)
    ref = ort_session(path, threads=1).run(None, feeds)
    assert dets.shape == (4, 100, 5) and dets.dtype == np.float32
    assert labels.shape == (4, 100) and labels.dtype == np.int64
    # ONNX Runtime's detections, at the tolerances of its own parity test
    # against PyTorch (test_parity.py).
    report = match_detections(*ref, dets, labels, iou_thr=0.99,
                              score_tol=1e-3)
    assert report['reference'] == report['other'] == 400
    assert report['matched'] >= 0.98 * report['reference'], report
    # Clipped to each image's size, none in the padding.
    assert (dets[..., :4] >= 0).all()
    assert (dets[..., 0:4:2] <= 397).all() and (dets[..., 1:4:2] <= 300).all()
    # mmdet's predict on the same images (it pads them to 320x416 itself).
    bgr, _ = as_batch(shapes_val, SHAPE)
    mmdet = mmdet_detections(model, bgr, 100)
    report = match_detections(*mmdet, dets, labels, iou_thr=0.99,
                              score_tol=1e-3)
    assert abs(report['other'] - report['reference']) <= 1
    assert report['matched'] >= 0.98 * report['reference'], report
    # img_shape left out: its default (all of the input), as in ONNX
    # Runtime; the images unpadded, the graph pads them itself.
    x = feeds['input'][:, :, :SHAPE[0], :SHAPE[1]].copy()
    alone = session.run(None, {'input': x})
    np.testing.assert_allclose(alone[0], dets, atol=1e-3)
    np.testing.assert_array_equal(alone[1], labels)


def test_wide_convs_rewritten_with_the_same_numbers(exported, feeds):
    """transpose_wide_convs: the thin map's two 1x15 convolutions become
    15x1 ones on the transposed map (ov_compile does it for an .onnx), and
    the detections do not change."""

    from shufflenet_det.deploy.openvino import (read_model,
                                                transpose_wide_convs)
    _, _, path = exported
    model, defaults = read_model(path)
    kernels = [tuple(op.input_value(1).get_partial_shape().to_shape())[2:]
               for op in model.get_ordered_ops()
               if op.get_type_name() == 'Convolution'
               and op.get_friendly_name().startswith('/thin_map/')]
    assert sorted(kernels) == [(1, 15), (1, 15), (15, 1), (15, 1)]
    assert transpose_wide_convs(model) == 2
    kernels = [tuple(op.input_value(1).get_partial_shape().to_shape())[2:]
               for op in model.get_ordered_ops()
               if op.get_type_name() == 'Convolution']
    assert (1, 15) not in kernels and kernels.count((15, 1)) == 4
    core = ov_core()
    config = {'INFERENCE_PRECISION_HINT': 'f32', 'INFERENCE_NUM_THREADS': 1}
    outs = [core.compile_model(m, 'CPU', config)({**defaults, **feeds})
            for m in (read_model(path)[0], model)]
    np.testing.assert_allclose(outs[1][0], outs[0][0], atol=1e-3)
    np.testing.assert_array_equal(outs[1][1], outs[0][1])


def test_roi_align_rewritten_with_the_same_numbers(exported, feeds):
    """roi_align_as_grid_sample: PSRoIAlign's ROIAlign becomes a GridSample
    (ov_compile does it), and the detections do not change."""

    from shufflenet_det.deploy.openvino import (GRID_SAMPLE_MARK, ov_compile,
                                                read_model,
                                                roi_align_as_grid_sample)
    _, _, path = exported
    model, defaults = read_model(path)
    assert roi_align_as_grid_sample(model) == 1
    types = [op.get_type_name() for op in model.get_ordered_ops()]
    assert 'ROIAlign' not in types and types.count('GridSample') == 1
    assert all(GRID_SAMPLE_MARK in op.get_friendly_name()
               for op in model.get_ordered_ops()
               if op.get_type_name() == 'GridSample')
    core = ov_core()
    config = {'INFERENCE_PRECISION_HINT': 'f32', 'INFERENCE_NUM_THREADS': 1}
    outs = [core.compile_model(m, 'CPU', config)({**defaults, **feeds})
            for m in (read_model(path)[0], model)]
    # Float rounding: a box corner of 342 px moved by 0.002 px here.
    np.testing.assert_allclose(outs[1][0], outs[0][0], atol=1e-3, rtol=1e-5)
    np.testing.assert_array_equal(outs[1][1], outs[0][1])
    # ov_compile rewrites a copy of a model it is given.
    given = read_model(path)[0]
    compiled = ov_compile(given, threads=1).compiled.get_runtime_model()
    assert 'ROIAlign' in [op.get_type_name() for op in given.get_ordered_ops()]
    assert 'GridSample' in [op.get_rt_info()['layerType'].astype(str)
                            for op in compiled.get_ordered_ops()]


@pytest.mark.parametrize('aligned', [True, False])
def test_roi_align_as_grid_sample_against_torchvision(aligned):
    """The rewritten ROIAlign pools as torchvision's roi_align (aligned:
    ONNX's half_pixel; not: asymmetric, RoIs at least 1 pixel), RoIs
    partly or wholly outside the map and of zero size included, for 1x1
    and 7x7 bins of 1 to 3 samples a side."""
    from openvino import opset13 as ops
    from torchvision.ops import roi_align

    from shufflenet_det.deploy.openvino import roi_align_as_grid_sample
    rng = np.random.default_rng(0)
    n, c, h, w, m, scale = 3, 4, 9, 11, 60, 1 / 16
    feat = rng.standard_normal((n, c, h, w)).astype(np.float32)
    corner = rng.uniform(-40, 200, (m, 2))
    rois = np.concatenate([corner, corner + rng.uniform(0, 120, (m, 2))],
                          1).astype(np.float32)
    rois[:5, 2:] = rois[:5, :2]  # zero size
    rois[5:10] += 400  # wholly outside
    index = rng.integers(0, n, m)
    mode = 'half_pixel_for_nn' if aligned else 'asymmetric'
    core = ov_core()
    for k, s in [(1, 1), (1, 2), (7, 2), (2, 3)]:
        inputs = [ops.parameter([-1, c, -1, -1], np.float32),
                  ops.parameter([-1, 4], np.float32),
                  ops.parameter([-1], np.int64)]
        model = ov.Model([ops.roi_align(*inputs, k, k, s, scale, 'avg',
                                        mode)], inputs)
        assert roi_align_as_grid_sample(model) == 1
        got = core.compile_model(model, 'CPU', {
            'INFERENCE_PRECISION_HINT': 'f32'})([feat, rois, index])[0]
        want = roi_align(torch.from_numpy(feat), torch.from_numpy(
            np.concatenate([index[:, None], rois], 1).astype(np.float32)),
            k, scale, s, aligned=aligned).numpy()
        assert np.abs(want).max() > 0.5
        np.testing.assert_allclose(got, want, atol=2e-5,
                                   err_msg=f'{k}x{k} bins, {s} samples')


def _signal_stack_mapped():
    """Whether this thread's alternate signal stack, if it has one, lies
    in mapped memory (what the kernel writes a signal's frame to)."""
    import ctypes

    class StackT(ctypes.Structure):
        _fields_ = [('ss_sp', ctypes.c_void_p), ('ss_flags', ctypes.c_int),
                    ('ss_size', ctypes.c_size_t)]

    stack = StackT()
    assert ctypes.CDLL(None).sigaltstack(None, ctypes.byref(stack)) == 0
    if stack.ss_flags & 2:  # SS_DISABLE: none
        return True
    with open('/proc/self/maps') as maps:
        spans = [[int(a, 16) for a in line.split()[0].split('-')]
                 for line in maps]
    return any(lo <= stack.ss_sp and stack.ss_sp + stack.ss_size <= hi
               for lo, hi in spans)


@pytest.mark.skipif(not os.path.exists('/proc/self/maps'),
                    reason='reads the memory map of Linux')
def test_sessions_released_in_any_order_keep_the_signal_stack(exported):
    """Two sessions released in the order they were made: each Core's CPU
    plugin, released, puts back the signal stack it found, so with a Core
    per session the thread is left on the first one's freed stack and the
    next signal kills the process (the SIGSEGV of a data-loader test
    after the OpenVINO ones). ov_core shares one Core."""
    import gc

    from shufflenet_det.deploy.openvino import ov_compile
    first = ov_compile(exported[2], threads=1)
    second = ov_compile(exported[2], threads=1)
    del first
    gc.collect()
    del second
    gc.collect()
    assert _signal_stack_mapped()


def test_precision_is_set_and_read_back(exported):
    from shufflenet_det.deploy.openvino import ov_compile
    session = ov_compile(exported[2], threads=1)
    assert session.precision == 'f32'
    assert session.threads == 1
    prop = session.compiled.get_property('INFERENCE_PRECISION_HINT')
    assert prop.get_type_name() == 'f32'
    assert str(session.compiled.get_property('PERFORMANCE_HINT')) == 'LATENCY'
    with pytest.raises(DeployError, match="precision 'f16': choose from"):
        ov_compile(exported[2], precision='f16')


def _capabilities(monkeypatch, bf16):
    """OpenVINO's CPU reporting bf16 support, or none."""
    from shufflenet_det.deploy import openvino as backend

    core = ov_core()

    class Core:  # the process's Core, which its CPU plugin needs (ov_core)

        def __getattr__(self, name):
            return getattr(core, name)

        def get_property(self, device, name):
            value = core.get_property(device, name)
            if name == 'OPTIMIZATION_CAPABILITIES':
                value = [c for c in value if c != 'BF16'] + (
                    ['BF16'] if bf16 else [])
            return value

    monkeypatch.setattr(backend, 'ov_core', Core)


def test_bf16_without_cpu_support_is_refused(exported, monkeypatch):
    from shufflenet_det.deploy.openvino import ov_compile
    _capabilities(monkeypatch, bf16=False)
    with pytest.raises(DeployError, match=r'bf16 asked, but this CPU .* has '
                       r'no BF16 support .* run with precision f32'):
        ov_compile(exported[2], precision='bf16', threads=1)


def test_bf16_runs_bf16_or_is_refused(exported, monkeypatch):
    """The precision read back: a CPU with bf16 runs it; one without, told
    it has it, would run f32 and is refused all the same."""
    from shufflenet_det.deploy.openvino import ov_compile
    has_bf16 = 'BF16' in ov_core().get_property(
        'CPU', 'OPTIMIZATION_CAPABILITIES')
    _capabilities(monkeypatch, bf16=True)
    if has_bf16:
        assert ov_compile(exported[2], 'bf16', threads=1).precision == 'bf16'
    else:
        with pytest.raises(DeployError, match='bf16 asked, but the compiled '
                           'model runs f32'):
            ov_compile(exported[2], 'bf16', threads=1)


def _sample_point_precisions(session):
    """The precisions of the arithmetic of the rewritten RoI align's
    sample points (element-wise layers, fused or not), as run."""
    from shufflenet_det.deploy.openvino import GRID_SAMPLE_MARK
    return {op.get_rt_info()['runtimePrecision'].astype(str)
            for op in session.compiled.get_runtime_model().get_ordered_ops()
            if GRID_SAMPLE_MARK in op.get_friendly_name()
            and op.get_rt_info()['layerType'].astype(str) in ('Eltwise',
                                                              'Subgraph')}


def test_kept_f32_outputs_are_hidden(exported, feeds):
    """keep_sample_points_f32 adds an output per GridSample; the session
    neither lists nor returns it, and the detections do not change."""
    from shufflenet_det.deploy.openvino import (KEEP_F32_MARK,
                                                keep_sample_points_f32,
                                                ov_compile, read_model,
                                                roi_align_as_grid_sample,
                                                transpose_wide_convs)
    model, _ = read_model(exported[2])
    transpose_wide_convs(model)  # ov_compile's two rewrites
    roi_align_as_grid_sample(model)
    assert keep_sample_points_f32(model) == 1
    kept = ov_compile(model, threads=1, rewrite=False)
    plain = ov_compile(exported[2], threads=1)
    names = [p.get_any_name() for p in kept.compiled.outputs]
    assert sum(n.startswith(KEEP_F32_MARK) for n in names) == 1
    assert [p.name for p in kept.get_outputs()] == \
        [p.name for p in plain.get_outputs()]
    for a, b in zip(kept.run(None, feeds), plain.run(None, feeds)):
        np.testing.assert_array_equal(a, b)


def test_bf16_keeps_the_sample_points_f32(exported):
    """At bf16 the plugin runs the sample points' arithmetic in bf16 unless
    they are kept f32 (ov_compile does): measured on make demo's
    checkpoint, 1 of 38 f32 detections left without, 38 with."""
    from shufflenet_det.deploy.openvino import (ov_compile, read_model,
                                                roi_align_as_grid_sample)
    if 'BF16' not in ov_core().get_property('CPU',
                                            'OPTIMIZATION_CAPABILITIES'):
        pytest.skip('this CPU has no bf16')
    kept = _sample_point_precisions(ov_compile(exported[2], 'bf16',
                                               threads=1))
    assert 'f32' in kept and 'bf16' not in kept  # (and integer indices)
    model, _ = read_model(exported[2])
    roi_align_as_grid_sample(model)
    bare = ov_compile(model, 'bf16', threads=1, rewrite=False)
    assert 'bf16' in _sample_point_precisions(bare)


@pytest.fixture(scope='module')
def int8_ir(tmp_path_factory, exported, shapes_root):
    """The int8 IR of all four parts, calibrated on the four val images
    one at a time (the batches of ONNX Runtime's calibration)."""
    from mmengine.config import Config

    from shufflenet_det.deploy.inputs import config_fill, pipeline_images
    from shufflenet_det.deploy.openvino import ov_quantize
    from shufflenet_det.deploy.quantize import ImageCalibrationReader
    config, _, fp32 = exported
    cfg = Config.fromfile(config)
    paths = sorted(str(p) for p in (shapes_root / 'val').iterdir())
    out = str(tmp_path_factory.mktemp('ov_int8') / 'model_int8.xml')
    info = ov_quantize(fp32, out, ImageCalibrationReader(
        pipeline_images(cfg, paths), config_fill(cfg)))
    return out, info


def _layers(model, parts):
    """The Conv / MatMul layers of ``parts``, by part and type."""
    from shufflenet_det.deploy.quantize import PARTS
    counts = {}
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind not in ('Convolution', 'GroupConvolution', 'MatMul'):
            continue
        part = next(p for p in parts
                    if op.get_friendly_name().startswith(PARTS[p]))
        counts.setdefault(part, {})
        counts[part][kind] = counts[part].get(kind, 0) + 1
    return counts


def test_int8_ir_quantises_the_parts_only(exported, int8_ir):
    from shufflenet_det.deploy.openvino import (int8_weights, read_model,
                                                runtime_precisions, ov_compile)
    from shufflenet_det.deploy.quantize import DEFAULT_PARTS, PARTS
    _, _, fp32 = exported
    out, info = int8_ir
    # Every convolution and fc of the four parts has int8 weights, no
    # layer outside them has (each Conv / MatMul of the graph is in one of
    # the parts).
    fp32_layers = _layers(read_model(fp32)[0], DEFAULT_PARTS)
    assert set(fp32_layers) == set(DEFAULT_PARTS)
    assert info['int8_weights'] == int8_weights(out) == fp32_layers
    model = read_model(out)[0]
    prefixes = tuple(PARTS[p] for p in DEFAULT_PARTS)
    fqs = [op for op in model.get_ordered_ops()
           if op.get_type_name() == 'FakeQuantize']
    assert len(fqs) > 50
    for fq in fqs:  # what each quantiser feeds: layers of the parts only
        for user in fq.output(0).get_target_inputs():
            assert user.get_node().get_friendly_name().startswith(
                prefixes), fq.get_friendly_name()
    # As OpenVINO runs it: int8 convolutions and fcs; PSRoIAlign (its
    # RoiAlign as a GridSample), both NMS and the RPN's TopK in fp32.
    ran = runtime_precisions(ov_compile(out, threads=1))
    assert ran[('Convolution', 'u8')] > 20
    assert ran[('FullyConnected', 'u8')] == 3
    assert not {p for (t, p) in ran if t == 'ROIAlign'}
    for layer in ('GridSample', 'NonMaxSuppression', 'TopK'):
        assert {p for (t, p) in ran if t == layer} == {'f32'}, layer


def test_int8_emulated_runs_no_int8_kernel(int8_ir, feeds):
    """emulate_int8: the IR's FakeQuantize ops run in f32 (no u8 or i8
    convolution), where the default runs int8 convolutions; both detect
    in the graph's interface."""
    from shufflenet_det.deploy.openvino import (ov_compile,
                                                runtime_precisions)
    out, _ = int8_ir
    kernels = {}
    for emulate in (False, True):
        session = ov_compile(out, threads=1, emulate_int8=emulate)
        kernels[emulate] = {p for (t, p) in runtime_precisions(session)
                            if t == 'Convolution'}
        dets, labels = session.run(None, feeds)
        assert dets.shape[-1] == 5 and labels.shape == dets.shape[:-1]
    assert 'u8' in kernels[False]
    assert kernels[True] == {'f32'}


def test_int8_compiled_for_each_input_shape(exported, int8_ir, feeds):
    """A quantised graph of dynamic shape runs compiled for each batch's
    shape (OpenVINO 2026.4 lost most of make demo's int8 detections on
    dynamic shapes: docs/openvino.md), with the outputs of the IR
    reshaped to that shape by hand; an f32 graph stays dynamic."""
    from shufflenet_det.deploy.openvino import (STATIC_SHAPES, ov_compile,
                                                read_model, static_shape)
    out, _ = int8_ir
    session = ov_compile(out, threads=1)
    assert session.compiled.input('input').get_partial_shape().is_dynamic
    one = {k: v[:1] for k, v in feeds.items()}
    for batch in (feeds, one, feeds):
        got = session.run(None, batch)
        shape = tuple(batch['input'].shape)
        assert tuple(session.compiled.input('input').get_shape()) == shape
        model, _ = read_model(out)
        by_hand = ov_compile(static_shape(model, shape), threads=1)
        assert not by_hand.compiled.input(
            'input').get_partial_shape().is_dynamic
        for a, b in zip(got, by_hand.run(None, batch)):
            np.testing.assert_array_equal(a, b)
    assert len(session._by_shape) == 2 <= STATIC_SHAPES
    f32 = ov_compile(exported[2], threads=1)
    f32.run(None, feeds)
    assert f32.compiled.input('input').get_partial_shape().is_dynamic


def test_int8_ir_metadata_and_interface(exported, int8_ir, feeds):
    from mmengine.config import Config

    from shufflenet_det.deploy.openvino import (check_ir, ir_metadata,
                                                ov_compile)
    config, _, fp32 = exported
    out, _ = int8_ir
    assert ir_metadata(out) == read_metadata(fp32)
    assert ir_metadata(out, 'shufflenet_det.int8_parts') == [
        'backbone', 'thin_map', 'rpn_head', 'rcnn_fcs']
    assert check_ir(Config.fromfile(config), out) == read_metadata(fp32)
    # The Table 7 cell has 80 classes, the graph 5: the check names the IR.
    with pytest.raises(DeployError, match=f'{out} was exported from a '
                       'detector of 5 classes, the config has 80'):
        check_ir(Config.fromfile(BASE), out)
    session = ov_compile(out, threads=1)
    assert [i.name for i in session.get_inputs()] == ['input', 'img_shape']
    dets, labels = session.run(None, feeds)
    assert dets.shape == (4, 100, 5) and labels.shape == (4, 100)
    unused = dets[..., 4] == 0
    assert (labels[unused] == -1).all() and (labels[~unused] >= 0).all()
    assert (np.diff(dets[..., 4], axis=1) <= 0).all()  # best first
    assert (dets[..., :4] >= 0).all()
    assert (dets[..., 0:4:2] <= 397).all() and (dets[..., 1:4:2] <= 300).all()
    # What lies beyond each image's size does not matter.
    noisy = dict(feeds, input=feeds['input'].copy())
    noisy['input'][:, :, SHAPE[0]:] = 255
    noisy['input'][:, :, :, SHAPE[1]:] = 0
    other = session.run(None, noisy)
    np.testing.assert_array_equal(other[0], dets)
    np.testing.assert_array_equal(other[1], labels)


def test_int8_parts_and_errors(tmp_path, exported, feeds):
    """The R-CNN's fcs alone: their three MatMuls int8, nothing else; and
    the one-line errors."""
    from shufflenet_det.deploy.openvino import ov_compile, ov_quantize
    _, _, fp32 = exported
    out = str(tmp_path / 'fcs_int8.xml')
    calib = [{k: v[i:i + 1] for k, v in feeds.items()} for i in range(2)]
    info = ov_quantize(fp32, out, calib, parts=['rcnn_fcs'])
    assert info['int8_weights'] == {'rcnn_fcs': {'MatMul': 3}}
    dets, _ = ov_compile(out, threads=1).run(None, feeds)
    assert dets.shape == (4, 100, 5)
    # 7-bit weights by default (NNCF's overflow fix in every layer: CPUs
    # without VNNI), 8-bit on request: the int8 constants' range.

    def weight_range(path):
        consts = [op.get_data() for op in ov_core().read_model(path)
                  .get_ordered_ops() if op.get_type_name() == 'Constant'
                  and op.get_output_element_type(0).get_type_name() == 'i8']
        assert len(consts) == 3
        return max(abs(int(c.min())) for c in consts), max(
            int(c.max()) for c in consts)
    assert info['weight_bits'] == 7 and max(weight_range(out)) <= 64
    out8 = str(tmp_path / 'fcs_int8_8bit.xml')
    ov_quantize(fp32, out8, calib, parts=['rcnn_fcs'], weight_bits=8)
    assert weight_range(out8) == (127, 127)
    with pytest.raises(DeployError, match='choose 7'):
        ov_quantize(fp32, out8, calib, parts=['rcnn_fcs'], weight_bits=6)
    with pytest.raises(DeployError, match='no calibration batch'):
        ov_quantize(fp32, str(tmp_path / 'x.xml'), [], parts=['rcnn_fcs'])
    with pytest.raises(DeployError, match=r"parts \['rpn'\]: choose from"):
        ov_quantize(fp32, str(tmp_path / 'x.xml'), calib, parts=['rpn'])


def test_openvino_graph_detects_as_onnxruntime(exported, shapes_val):
    """deploy.runtime.OpenVINOGraph: OrtGraph's host-image interface (what
    the benchmark times and eval_onnx.py runs), the precision read back."""
    from shufflenet_det.deploy import OpenVINOGraph, OrtGraph
    _, _, path = exported
    bgr, _ = as_batch(shapes_val[:2], SHAPE)
    graph = OpenVINOGraph(path, threads=1)
    assert graph.precision == 'f32' and graph.runtime == 'OpenVINO'
    assert graph.batch_size is None and graph.shape is None  # --dynamic
    ref = OrtGraph(path, threads=1)
    np.testing.assert_array_equal(graph.fill, ref.fill)
    report = match_detections(*ref.detect(bgr), *graph.detect(bgr),
                              iou_thr=0.99, score_tol=1e-3)
    assert report['reference'] == 200
    assert report['matched'] >= 0.98 * report['reference'], report
    dets, labels = graph(bgr)
    assert dets.shape == (2, 100, 5) and labels.shape == (2, 100)


def test_openvino_stays_optional(tmp_path):
    """Importing the package imports neither openvino nor nncf; without
    openvino, the backend says how to install it, in one line."""
    import subprocess
    import sys
    blocked = tmp_path / 'openvino'
    blocked.mkdir()
    (blocked / '__init__.py').write_text('raise ImportError("blocked")\n')
    code = ('import sys\n'
            'import shufflenet_det.deploy as d\n'
            'from shufflenet_det.apis import evaluation\n'
            'assert "openvino" not in sys.modules, "openvino imported"\n'
            'assert "nncf" not in sys.modules, "nncf imported"\n'
            'try:\n'
            '    d.ov_compile("model.onnx")\n'
            'except d.DeployError as e:\n'
            '    print(e)\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == (
        'openvino is not installed, which the OpenVINO backend needs: run '
        'make setup (or pip install -e .[deploy])')
