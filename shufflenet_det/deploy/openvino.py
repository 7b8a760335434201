"""The exported Light-Head R-CNN in OpenVINO on the CPU: the fp32 graph at
an explicit inference precision, and its int8 IR quantised with NNCF.

OpenVINO reads the ONNX graph of :func:`~.export.export_onnx` as it is,
with one change made here: ``img_shape``, an optional input (an
initializer of its name holds its default), would be folded into a
constant by OpenVINO's ONNX reader, so that the images' sizes could not be
given; it is read as a plain input, and :class:`OpenVINOSession` feeds the
default when a caller leaves it out, as ONNX Runtime does.

Precision: OpenVINO's CPU plugin runs in bf16 by default where the CPU has
bf16 (AVX-512 BF16 or AMX), and bf16 changes the detections (docs/
openvino.md); :func:`ov_compile` always sets ``INFERENCE_PRECISION_HINT``
(f32 unless told otherwise), refuses bf16 on a CPU without it (the plugin
would quietly run f32) and reports what the compiled model runs. In bf16
the plugin itself keeps in f32 the graph's tail after the last convolution
or fc (the box decoding, both NMS, the RPN's post-processing that feeds the
box decoding); the convolutions, the fcs and PSRoIAlign run bf16.

int8: :func:`ov_quantize` quantises the parts of :data:`~.quantize.PARTS`
named (by their nodes' name prefixes, as ONNX Runtime's int8 does) with
NNCF's post-training quantisation; everything else stays fp32 (NNCF's
``IgnoredScope``). The IR (.xml/.bin) carries the fp32 graph's metadata
and the parts in its ``rt_info`` (under ``framework``, where OpenVINO puts
an ONNX graph's ``metadata_props``): :func:`ir_metadata`, :func:`check_ir`.
"""
import functools
import io
import json
import logging
import os
import os.path as osp
import tempfile

import numpy as np

from .export import METADATA_KEY, check_graph
from .quantize import DEFAULT_PARTS, METADATA_KEY as INT8_KEY
from .quantize import PARTS, check_weight_bits, part_of
from .wrapper import DeployError

#: inference precision -> the CPU capability it needs
#: (``OPTIMIZATION_CAPABILITIES``); f32 needs none.
PRECISIONS = {'f32': None, 'bf16': 'BF16'}
#: ``rt_info`` path of the metadata in an OpenVINO model: where the ONNX
#: reader puts ``metadata_props``, so both kinds of model read alike.
RT_INFO_SECTION = 'framework'
HINTS = ('LATENCY', 'THROUGHPUT')


#: what to do when openvino or nncf is missing.
INSTALL = 'run make setup (or pip install -e .[deploy])'


def require(module='openvino'):
    """Import ``module`` (openvino or nncf), or stop with one line saying
    how to install it: both are optional to the package."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DeployError(f'{module} is not installed, which the OpenVINO '
                          f'backend needs: {INSTALL}') from None


@functools.lru_cache(maxsize=None)
def ov_core():
    """The process's one ``openvino.Core``, never released before exit.

    OpenVINO's CPU plugin points the creating thread's signal stack
    (``sigaltstack``) at memory it owns, and its release restores the
    stack that was there before: Cores released out of creation order
    leave the thread on freed memory, and the next signal (a data-loader
    worker's SIGCHLD) kills the process with SIGSEGV. One Core for the
    process cannot be released out of order.
    """
    return require().Core()


def check_precision(precision, device='CPU', core=None):
    """Stop with what to do when ``device`` cannot run ``precision``
    (a name of :data:`PRECISIONS`): OpenVINO would run another one
    without a word."""
    if precision not in PRECISIONS:
        raise DeployError(f'precision {precision!r}: choose from '
                          f'{", ".join(PRECISIONS)}')
    needs = PRECISIONS[precision]
    if not needs:
        return
    core = core or ov_core()
    have = core.get_property(device, 'OPTIMIZATION_CAPABILITIES')
    if needs not in have:
        raise DeployError(
            f'{precision} asked, but this {device} '
            f'({core.get_property(device, "FULL_DEVICE_NAME")}) has no '
            f'{needs} support (OpenVINO capabilities: {", ".join(have)}): '
            f'OpenVINO would run f32 instead; run with precision f32')


def transpose_wide_convs(model):
    """Rewrite, in place, each convolution of ``model`` with a 1 x k kernel
    (k > 1; the thin map's 1x15) as a k x 1 convolution of the input with
    its height and width swapped, swapped back: the same numbers (the
    weights, strides, pads and dilations swapped too). Why: OpenVINO
    2026.4's CPU plugin (AVX2) runs the thin map's 1x15 convolution over
    the 1024 channels of C5 with its generic ``jit_gemm_f32`` kernel, the
    15x1 one with ``brgconv``; measured at 800x1200, batch 1, the thin
    map took 116 ms as exported, 45 ms rewritten (docs/openvino.md).
    Only convolutions with constant weights are rewritten. Returns how
    many."""
    require()
    from openvino import opset13 as ops
    perm = ops.constant(np.array([0, 1, 3, 2], np.int64))
    count = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != 'Convolution':
            continue
        weight = op.input_value(1).get_node()
        if weight.get_type_name() != 'Constant':
            continue
        w = weight.get_data()
        if w.ndim != 4 or w.shape[2] != 1 or w.shape[3] < 2:
            continue
        a = op.get_attributes()
        conv = ops.convolution(
            ops.transpose(op.input_value(0), perm),
            ops.constant(np.ascontiguousarray(w.transpose(0, 1, 3, 2))),
            a['strides'][::-1], a['pads_begin'][::-1], a['pads_end'][::-1],
            a['dilations'][::-1], a['auto_pad'])
        out = ops.transpose(conv, perm)
        out.set_friendly_name(op.get_friendly_name())
        for target in list(op.output(0).get_target_inputs()):
            target.replace_source_output(out.output(0))
        count += 1
    if count:
        model.validate_nodes_and_infer_types()
    return count


#: ROIAlign's ``aligned_mode`` -> (added to the RoI before scaling, after,
#: RoI sizes at least 1): OpenVINO's ``roi_align`` reference. ONNX
#: ``RoiAlign``'s half_pixel reads as OpenVINO's ``half_pixel_for_nn``.
_ALIGN_MODES = {'half_pixel_for_nn': (0.0, -0.5, False),
                'half_pixel': (0.5, -0.5, False),
                'asymmetric': (0.0, 0.0, True)}


#: in the names of the nodes that :func:`roi_align_as_grid_sample` makes
#: (after the ROIAlign's): what the profile counts as PSRoIAlign.
GRID_SAMPLE_MARK = '/as_grid_sample/'


def _roi_align_samples(op, ops):
    """ROIAlign ``op`` (mode avg, a fixed sampling ratio) written with
    GridSample: its output node, the same numbers to float rounding.

    Every sample point (``s x s`` in each of a RoI's ``ph x pw`` bins) is
    computed as OpenVINO's ROIAlign does: a point more than one pixel
    outside the map reads 0, the others are clamped into it. The N images
    are tiled into one image, T = ceil(sqrt(N)) a row (zero images fill the
    last row; a square keeps the coordinates small, so float32 rounds them
    little), read by one GridSample (bilinear; a clamped point never
    reaches a neighbour image with a non-zero weight), with a bin's
    samples side by side, averaged."""
    a = op.get_attributes()
    ph, pw, s = a['pooled_h'], a['pooled_w'], a['sampling_ratio']
    before, after, min_one = _ALIGN_MODES[a['aligned_mode']]
    scale = a['spatial_scale']
    f32, i64 = np.float32, np.int64

    def c(value, dtype=f32):
        return ops.constant(np.array(value, dtype))

    data, rois, index = (op.input_value(i) for i in range(3))
    shape = ops.shape_of(data, 'i64')  # N, C, H, W
    n, ch, h, w = (ops.gather(shape, c([i], i64), c(0, i64))
                   for i in range(4))
    hf, wf = ops.convert(h, f32), ops.convert(w, f32)
    x1, y1, x2, y2 = ops.split(rois, c(1, i64), 4).outputs()  # (M, 1)

    def points(lo, hi, size, bins, layout):
        """Sample coordinates (M, bins * s) reshaped to ``layout``, and
        1 where they are read, 0 where they are more than a pixel out."""
        start = ops.add(ops.multiply(ops.add(lo, c(before)), c(scale)),
                        c(after))
        extent = ops.multiply(ops.subtract(hi, lo), c(scale))
        if min_one:
            extent = ops.maximum(extent, c(1.0))
        steps = np.arange(bins)[:, None] + (np.arange(s) + 0.5) / s
        p = ops.add(start, ops.multiply(ops.divide(extent, c(float(bins))),
                                        c(steps.reshape(1, -1))))
        inside = ops.logical_and(ops.greater_equal(p, c(-1.0)),
                                 ops.less_equal(p, size))
        p = ops.minimum(ops.maximum(p, c(0.0)), ops.subtract(size, c(1.0)))
        return (ops.reshape(p, c(layout, i64), False),
                ops.reshape(inside, c(layout, i64), False))

    # (M, ph, pw, s [row], s [column]): a bin's samples side by side.
    xs, x_in = points(x1, x2, wf, pw, [-1, 1, pw, 1, s])
    ys, y_in = points(y1, y2, hf, ph, [-1, ph, 1, s, 1])
    # Image b is tile (b // T, b % T) of the tiled image, Tr x T tiles.
    t = ops.convert(ops.ceiling(ops.sqrt(ops.convert(n, f32))), i64)
    tr = ops.divide(ops.subtract(ops.add(n, t), c([1], i64)), t)  # ceil
    index = ops.convert(index, i64)
    tile_y = ops.divide(index, ops.squeeze(t, c([0], i64)))
    tile_x = ops.subtract(index, ops.multiply(tile_y, ops.squeeze(
        t, c([0], i64))))

    def offset(tile, size):
        return ops.reshape(ops.multiply(ops.convert(tile, f32), size),
                           c([-1, 1, 1, 1, 1], i64), False)

    xs = ops.add(xs, offset(tile_x, wf))
    ys = ops.add(ys, offset(tile_y, hf))
    cols = ops.multiply(ops.convert(t, f32), wf)
    rows = ops.multiply(ops.convert(tr, f32), hf)
    # GridSample, align_corners=False: pixel x -> (2x + 1) / W - 1. A
    # point that reads 0 goes to x = -3, where no neighbour is in the map
    # (cheaper than masking the C values it would read).
    gx = ops.subtract(ops.divide(ops.add(ops.multiply(xs, c(2.0)), c(1.0)),
                                 cols), c(1.0))
    gx = ops.select(ops.logical_and(x_in, y_in), gx, c(-3.0))
    gy = ops.subtract(ops.divide(ops.add(ops.multiply(ys, c(2.0)), c(1.0)),
                                 rows), c(1.0))
    # The grid (1, M * ph * pw, s * s, 2) as x * (1, 0) + y * (0, 1).
    grid = ops.add(
        ops.multiply(ops.unsqueeze(gx, c(5, i64)), c([1.0, 0.0])),
        ops.multiply(ops.unsqueeze(gy, c(5, i64)), c([0.0, 1.0])))
    grid = ops.reshape(grid, c([1, -1, s * s, 2], i64), False)
    # (N, C, H, W) -> (Tr * T, ...) -> (Tr, T, C, H, W) -> (C, Tr, H, T, W)
    # -> (1, C, Tr * H, T * W).
    full = ops.pad(data, c([0, 0, 0, 0], i64), ops.concat(
        [ops.subtract(ops.multiply(tr, t), n), c([0, 0, 0], i64)], 0),
        'constant')
    tiled = ops.transpose(ops.reshape(full, ops.concat(
        [tr, t, ch, h, w], 0), False), c([2, 0, 3, 1, 4], i64))
    tiled = ops.reshape(tiled, ops.concat(
        [c([1], i64), ch, ops.multiply(tr, h), ops.multiply(t, w)], 0),
        False)
    sampled = ops.grid_sample(tiled, grid, {
        'align_corners': False, 'mode': 'bilinear',
        'padding_mode': 'zeros'})  # (1, C, M * ph * pw, s * s)
    if s > 1:
        sampled = ops.reduce_mean(sampled, c([3], i64), False)
    # (1, C, M * ph * pw[, 1]) -> (C, M, ph * pw) -> (M, C, ph, pw); 0: C.
    bins = ops.reshape(ops.squeeze(sampled, c([0], i64)),
                       c([0, -1, ph * pw], i64), True)
    return ops.reshape(ops.transpose(bins, c([1, 0, 2], i64)),
                       c([0, 0, ph, pw], i64), True)


def roi_align_as_grid_sample(model):
    """Rewrite, in place, each ROIAlign of ``model`` (mode avg, fixed
    sampling ratio: both PSRoIAlign forms of the exported graph) with
    GridSample (:func:`_roi_align_samples`): the same numbers to float
    rounding. Why: OpenVINO 2026.4's CPU ROIAlign pays per RoI, and the
    exported PSRoIAlign pools every bin (or sample) of every RoI as a RoI
    of its own (4 x 1000 RoIs x 49 bins); its profile at Table 7 size had
    ROIAlign at 2.5-3.6x ONNX Runtime's time (docs/openvino.md). The new
    nodes are named after the ROIAlign, with :data:`GRID_SAMPLE_MARK`.
    Returns how many."""
    require()
    from openvino import opset13 as ops
    count = 0
    for op in [o for o in model.get_ordered_ops()
               if o.get_type_name() == 'ROIAlign']:
        a = op.get_attributes()
        if a['mode'] != 'avg' or a['sampling_ratio'] <= 0 or \
                a['aligned_mode'] not in _ALIGN_MODES:
            continue
        known = {o.get_friendly_name() for o in model.get_ordered_ops()}
        name = op.get_friendly_name()
        out = _roi_align_samples(op, ops)
        for target in list(op.output(0).get_target_inputs()):
            target.replace_source_output(out.output(0))
        for new in model.get_ordered_ops():
            if new.get_friendly_name() not in known:
                new.set_friendly_name(
                    name + GRID_SAMPLE_MARK + new.get_friendly_name())
        count += 1
    if count:
        model.validate_nodes_and_infer_types()
    return count


#: How many input shapes an :class:`OpenVINOSession` compiled per shape
#: keeps compiled.
STATIC_SHAPES = 8


def has_fake_quantize(model):
    """Whether ``model`` (an ``openvino.Model``) has quantised layers: an
    int8 IR of NNCF, or an ONNX QDQ graph (OpenVINO reads its
    QuantizeLinear / DequantizeLinear pairs as FakeQuantize)."""
    return any(op.get_type_name() == 'FakeQuantize'
               for op in model.get_ordered_ops())


def static_shape(model, shape):
    """A copy of ``model`` with the image input (``input``) fixed to
    ``shape`` (N, 3, H, W), and ``img_shape`` to (N, 2) if it has one."""
    model = model.clone()
    shapes = {'input': list(shape)}
    if 'img_shape' in {n for i in model.inputs for n in i.get_names()}:
        shapes['img_shape'] = [shape[0], 2]
    model.reshape(shapes)
    return model


#: The names of the outputs :func:`keep_sample_points_f32` adds (the
#: session does not return them).
KEEP_F32_MARK = 'keep_f32/'


def keep_sample_points_f32(model):
    """Make OpenVINO's CPU plugin run, at bf16, the RoI sample points of
    each GridSample of ``model`` (:func:`roi_align_as_grid_sample`'s) in
    f32: an extra output (named :data:`KEEP_F32_MARK`...) of each grid. Why:
    at bf16 the plugin keeps f32 only the nodes between an output and the
    last convolution / fc / matmul before it (``MarkInferencePrecision`` in
    src/plugins/intel_cpu), and bf16's 8 significant bits round a sample
    point at x = 100 (feature-map pixels) to a multiple of 0.5; the
    proposals' chain it already keeps. (The
    ``precise`` runtime attribute it also honours cannot be set from
    Python: a string set under that key is ignored.) Measured on make
    demo's checkpoint: 1 of 38 f32 detections kept without, 38 with
    (docs/openvino.md). Returns how many outputs it added."""
    from openvino import opset13 as ops
    grids = [op.input_value(1) for op in model.get_ordered_ops()
             if op.get_type_name() == 'GridSample']
    results = []
    for i, grid in enumerate(grids):
        result = ops.result(grid)
        result.output(0).get_tensor().set_names({f'{KEEP_F32_MARK}{i}'})
        results.append(result)
    if results:
        model.add_results(results)
    return len(results)


def read_model(path_or_model, core=None):
    """An OpenVINO model of an exported graph (.onnx path, .xml IR path, or
    an ``openvino.Model``) and the default of each input that has one
    (``{name: array}``, ``img_shape``'s from the ONNX graph; for an IR,
    made from such a model by :func:`ov_quantize`, the default of
    :func:`~.export.export_onnx`: one row of zeros, all of the input)."""
    ov = require()
    core = core or ov_core()
    if isinstance(path_or_model, ov.Model):
        model = path_or_model
    elif str(path_or_model).endswith('.onnx'):
        import onnx
        from onnx import numpy_helper
        proto = onnx.load(path_or_model)
        inputs = {i.name for i in proto.graph.input}
        defaults = {}
        for t in [t for t in proto.graph.initializer if t.name in inputs]:
            defaults[t.name] = numpy_helper.to_array(t)
            # OpenVINO's ONNX reader would fold it into a constant.
            proto.graph.initializer.remove(t)
        return core.read_model(io.BytesIO(proto.SerializeToString())), \
            defaults
    else:
        model = core.read_model(path_or_model)
    names = {n for i in model.inputs for n in i.get_names()}
    defaults = ({'img_shape': np.zeros((1, 2), np.int64)}
                if 'img_shape' in names else {})
    return model, defaults


def ir_metadata(path_or_model, key=METADATA_KEY):
    """The graph's metadata (:meth:`~.wrapper.LightHeadRCNNExport.metadata`;
    with ``key=quantize.METADATA_KEY``: the parts in int8) of an OpenVINO
    model or IR, or None when it has none."""
    model = (path_or_model if not isinstance(path_or_model, (str, os.PathLike))
             else ov_core().read_model(path_or_model))
    if not model.has_rt_info([RT_INFO_SECTION, key]):
        return None
    return json.loads(model.get_rt_info([RT_INFO_SECTION, key]).astype(str))


def check_ir(cfg, path):
    """:func:`~.export.check_graph` for an IR of :func:`ov_quantize`: stop
    with what to do when it is not an export of ``cfg``'s detector as
    ``cfg`` has it. Returns the metadata."""
    import onnx
    from onnx import TensorProto, helper

    from .export import write_metadata
    model = ov_core().read_model(path)
    meta = ir_metadata(model)
    names = [[n for i in ports for n in sorted(i.get_names())]
             for ports in (model.inputs, model.outputs)]
    # check_graph reads an ONNX file: one with the IR's interface and
    # metadata only, its messages naming the IR.
    stub = helper.make_model(helper.make_graph(
        [], 'ir', [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                   for n in names[0]],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
         for n in names[1]]))
    if meta is not None:
        write_metadata(stub, meta)
    with tempfile.TemporaryDirectory(prefix='ir_check_') as tmp:
        onnx_path = osp.join(tmp, 'ir.onnx')
        onnx.save(stub, onnx_path)
        try:
            return check_graph(cfg, onnx_path)
        except DeployError as e:
            raise DeployError(str(e).replace(onnx_path, str(path))) from None


class _Port:
    """An input or output as ONNX Runtime's ``NodeArg`` describes it: name,
    shape (ints where fixed, None where dynamic), type."""

    def __init__(self, port):
        self.name = port.get_any_name()
        self.shape = [d.get_length() if d.is_static else None
                      for d in port.get_partial_shape()]
        self.type = port.get_element_type().get_type_name()


class OpenVINOSession:
    """A compiled OpenVINO model of the graph, called as an ONNX Runtime
    session is: ``run(output_names, feeds)`` -> a list of arrays
    (``dets``, ``labels``), ``get_inputs()``, ``get_outputs()``; inputs
    with a default (``img_shape``) may be left out.

    Given ``per_shape`` (a function of the batch's ``input`` shape that
    compiles the model for it), each run uses the model compiled for its
    input's shape (the last :data:`STATIC_SHAPES` kept): what
    :func:`ov_compile` does for int8 graphs of dynamic shape.

    Attributes:
        compiled: the ``openvino.CompiledModel`` (of the last run's shape
            when compiled per shape).
        precision (str): the inference precision it runs ('f32', 'bf16'),
            read back from the compiled model.
        threads (int): the threads it runs on, read back.
    """

    def __init__(self, compiled, defaults=None, per_shape=None):
        self.compiled = compiled
        self.defaults = dict(defaults or {})
        self.request = compiled.create_infer_request()
        self.precision = compiled.get_property(
            'INFERENCE_PRECISION_HINT').get_type_name()
        self.threads = int(compiled.get_property('INFERENCE_NUM_THREADS'))
        self._inputs = [_Port(p) for p in compiled.inputs]
        self._outputs = [_Port(p) for p in compiled.outputs
                         if not p.get_any_name().startswith(KEEP_F32_MARK)]
        self._per_shape = per_shape
        self._by_shape = {}

    def _for_shape(self, shape):
        """The compiled model and request of an input shape (compiled on
        first use; the oldest dropped beyond :data:`STATIC_SHAPES`)."""
        if shape not in self._by_shape:
            if len(self._by_shape) >= STATIC_SHAPES:
                self._by_shape.pop(next(iter(self._by_shape)))
            compiled = self._per_shape(shape)
            self._by_shape[shape] = (compiled, compiled.create_infer_request())
        self.compiled, self.request = self._by_shape[shape]

    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    def run(self, output_names, feeds):
        feeds = {**self.defaults, **feeds}
        unknown = set(feeds) - {p.name for p in self._inputs}
        if unknown:
            raise DeployError(f'the graph has no input {sorted(unknown)}: '
                              f'its inputs are {[p.name for p in self._inputs]}')
        if self._per_shape is not None:
            self._for_shape(tuple(np.shape(feeds['input'])))
        result = self.request.infer(feeds)
        names = output_names or [p.name for p in self._outputs]
        return [np.array(result[self.compiled.output(n)]) for n in names]

    def __call__(self, feeds):
        return self.run(None, feeds)


def _compile_static(core, model, device, config, shape):
    return core.compile_model(static_shape(model, shape), device, config)


def ov_compile(path_or_model, precision='f32', threads=None, device='CPU',
               hint='LATENCY', perf_count=False, rewrite=True,
               emulate_int8=False):
    """Compile an exported graph (.onnx, an IR of :func:`ov_quantize`, or
    an ``openvino.Model``; check it against the config first:
    :func:`~.export.check_graph`, :func:`check_ir`) for ``device``.

    Two operators are rewritten for OpenVINO's faster kernels first, with
    the same numbers: an .onnx graph's 1 x k convolutions
    (:func:`transpose_wide_convs`) and any graph's RoI align
    (:func:`roi_align_as_grid_sample`); at bf16, the RoI sample points are
    kept f32 (:func:`keep_sample_points_f32`). A quantised graph of
    dynamic input shape is compiled for each batch shape it runs
    (:class:`OpenVINOSession`): OpenVINO loses int8 accuracy on dynamic
    shapes.

    Args:
        precision (str): OpenVINO's ``INFERENCE_PRECISION_HINT``, set
            always: 'f32' (the default: ONNX Runtime's detections) or
            'bf16' (a CPU with bf16 only). An int8 IR runs its quantised
            parts in int8 and the rest at this precision.
        threads (int, optional): ``INFERENCE_NUM_THREADS`` (default:
            OpenVINO's choice, one per physical core).
        hint (str): ``PERFORMANCE_HINT``: 'LATENCY' (one stream with all
            the threads: what a synchronous ``run`` of one batch at a time
            uses) or 'THROUGHPUT' (several streams, for requests run in
            parallel).
        perf_count (bool): ``PERF_COUNT``, the per-node profile
            (``session.request.get_profiling_info()``;
            :func:`~.profile.profile_openvino`).
        rewrite (bool): the two rewrites (False: the graph as read, to
            measure what they change).
        emulate_int8 (bool): an int8 IR's FakeQuantize ops run as f32 ops
            (the plugin's low-precision transformations off, its hidden
            ``LP_TRANSFORMS_MODE``): the numbers of NNCF's quantisation
            without the CPU's int8 kernels, no faster than f32. What tells
            the quantisation's error from the kernels' (docs/openvino.md:
            on an AVX2 CPU without VNNI the kernels lose most of it).

    Returns:
        OpenVINOSession: ``.precision`` is what the compiled model runs.
    """
    if precision not in PRECISIONS:
        raise DeployError(f'precision {precision!r}: choose from '
                          f'{", ".join(PRECISIONS)}')
    if hint not in HINTS:
        raise DeployError(f'hint {hint!r}: choose from {", ".join(HINTS)}')
    core = ov_core()
    check_precision(precision, device, core)
    model, defaults = read_model(path_or_model, core)
    if rewrite:
        if model is path_or_model:  # the caller's model stays as it was
            model = model.clone()
        if str(path_or_model).endswith('.onnx'):
            # Not in an int8 IR: NNCF's quantised weights are no plain
            # constants.
            transpose_wide_convs(model)
        if roi_align_as_grid_sample(model) and precision == 'bf16':
            keep_sample_points_f32(model)
    config = {'INFERENCE_PRECISION_HINT': precision,
              'PERFORMANCE_HINT': hint}
    if threads:
        config['INFERENCE_NUM_THREADS'] = int(threads)
    if perf_count:
        config['PERF_COUNT'] = True
    if emulate_int8:
        config['LP_TRANSFORMS_MODE'] = False
    per_shape = None
    if has_fake_quantize(model) and model.input('input').get_partial_shape(
            ).is_dynamic:
        # OpenVINO 2026.4 runs a quantised graph of dynamic input shape
        # otherwise than one of static shape: on make demo's int8 IR it
        # kept 29 of 59 fp32 detections where the same IR reshaped to the
        # batch's shape kept 51 (docs/openvino.md). So each input shape
        # gets the model compiled for it.
        per_shape = functools.partial(_compile_static, core, model, device,
                                      config)
    session = OpenVINOSession(core.compile_model(model, device, config),
                              defaults, per_shape)
    if session.precision != precision:
        raise DeployError(f'{precision} asked, but the compiled model runs '
                          f'{session.precision} on this {device}')
    return session


def runtime_precisions(session):
    """What each layer of a compiled model runs in: ``{(layer type,
    precision): count}`` from OpenVINO's execution graph (after its
    fusions; e.g. ``('Convolution', 'u8')`` for an int8 convolution)."""
    compiled = getattr(session, 'compiled', session)
    counts = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        key = (rt['layerType'].astype(str), rt['runtimePrecision'].astype(str))
        counts[key] = counts.get(key, 0) + 1
    return counts


def ignored_scope(parts):
    """NNCF's ``IgnoredScope`` of the nodes outside ``parts`` (names of
    :data:`~.quantize.PARTS`): every node whose name does not start with
    one of theirs (the normalisation, the RPN's post-processing,
    PSRoIAlign, the box decoding, both NMS)."""
    import re

    import nncf
    unknown = set(parts) - set(PARTS)
    if unknown or not parts:
        raise DeployError(f'parts {sorted(unknown) or "(none)"}: choose from '
                          f'{", ".join(PARTS)}')
    prefixes = '|'.join(re.escape(PARTS[p]) for p in parts)
    return nncf.IgnoredScope(patterns=[f'^(?!{prefixes})'])


def ov_quantize(fp32_onnx_path, out_xml, calibration_feeds,
                parts=DEFAULT_PARTS, subset_size=None, preset=None,
                weight_bits=7):
    """Write the int8 IR of an exported fp32 graph to ``out_xml`` (and its
    .bin): the nodes of ``parts`` quantised by NNCF's post-training
    quantisation (int8 weights per output channel, activations with
    ranges calibrated on ``calibration_feeds``), everything else fp32.

    Args:
        calibration_feeds (iterable): the graph's feeds (dicts of ``input``
            and ``img_shape``), e.g. a :class:`~.quantize.
            ImageCalibrationReader` (the same batches as ONNX Runtime's
            calibration); they are held in memory, since NNCF passes over
            them more than once.
        subset_size (int, optional): how many of them NNCF uses (default:
            all).
        preset: ``nncf.QuantizationPreset`` (default: NNCF's, symmetric
            activations, the faster on CPUs).
        weight_bits (int): 7 (the default: NNCF's overflow fix in every
            layer, which CPUs without VNNI need, as ONNX Runtime's int8:
            :mod:`~.quantize`) or 8 (no overflow fix; CPUs with VNNI or AMX
            only). NNCF's own default fixes the first layer only: on this
            project's AVX2 VM the R-CNN fc then overflows as in ONNX Runtime.

    Returns:
        dict: ``parts``; ``int8_weights``, how many weight tensors are
        quantised.
    """
    ov, nncf = require(), require('nncf')
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters, OverflowFix)
    check_weight_bits(weight_bits)
    overflow = OverflowFix.ENABLE if weight_bits == 7 else OverflowFix.DISABLE
    feeds = list(calibration_feeds)
    if not feeds:
        raise DeployError('no calibration batch: give at least one batch of '
                          'the graph\'s batch size of calibration images')
    model, _ = read_model(fp32_onnx_path)
    meta = ir_metadata(model)
    if meta is None:
        raise DeployError(f'{fp32_onnx_path} has no {METADATA_KEY} metadata: '
                          'export it with tools/deployment/export_onnx.py')
    from nncf.common.logging import nncf_logger
    level = nncf_logger.level
    # NNCF logs at INFO every node it leaves unquantised: the ignored
    # scope, hundreds of lines that say what the parts already say.
    nncf.set_log_level(logging.WARNING)
    try:
        qmodel = nncf.quantize(
            model, nncf.Dataset(feeds), preset=preset,
            subset_size=subset_size or len(feeds),
            ignored_scope=ignored_scope(parts),
            advanced_parameters=AdvancedQuantizationParameters(
                overflow_fix=overflow))
    finally:
        nncf.set_log_level(level)
    # NNCF keeps the model's rt_info; written again so that the IR has it
    # whatever a version of NNCF does.
    qmodel.set_rt_info(json.dumps(meta), [RT_INFO_SECTION, METADATA_KEY])
    qmodel.set_rt_info(json.dumps(list(parts)), [RT_INFO_SECTION, INT8_KEY])
    os.makedirs(osp.dirname(osp.abspath(out_xml)), exist_ok=True)
    # Weights as NNCF leaves them (int8 where quantised, else fp32).
    ov.save_model(qmodel, out_xml, compress_to_fp16=False)
    return dict(parts=list(parts), weight_bits=weight_bits,
                int8_weights=int8_weights(qmodel))


def int8_weights(path_or_model):
    """The int8 weights of an IR of :func:`ov_quantize`, by the part of
    the layer that reads them: ``{part or 'other': {layer type: count}}``.
    NNCF stores a quantised weight as an int8 constant, converted and
    scaled on its way to the layer, or (where it cannot fold it: the
    depthwise convolutions' reshaped weights) as a FakeQuantize of the
    fp32 constant."""
    import openvino as ov
    model = (path_or_model if isinstance(path_or_model, ov.Model)
             else ov_core().read_model(path_or_model))
    passing = ('Constant', 'Convert', 'Subtract', 'Multiply', 'Reshape',
               'FakeQuantize')

    def source(op):  # the node that the weights path starts from
        while op.get_type_name() in passing[1:]:
            op = op.input_value(0).get_node()
        return op

    counts = {}
    for op in model.get_ordered_ops():
        int8 = (op.get_type_name() == 'Constant' and op.get_output_element_type(
            0).get_type_name() in ('i8', 'u8'))
        fq = (op.get_type_name() == 'FakeQuantize'
              and source(op).get_type_name() == 'Constant'
              and source(op).get_output_element_type(0).get_type_name()
              not in ('i8', 'u8'))
        if not (int8 or fq):
            continue
        layer = op
        while layer.get_type_name() in passing:
            users = list(layer.output(0).get_target_inputs())
            if len(users) != 1:
                break
            layer = users[0].get_node()
        kind = counts.setdefault(
            part_of(layer.get_friendly_name(), 'other'), {})
        kind[layer.get_type_name()] = kind.get(layer.get_type_name(), 0) + 1
    return counts
