"""Static int8 quantisation of an exported Light-Head R-CNN graph with ONNX
Runtime's own tools (``onnxruntime.quantization.quantize_static``): QDQ
format, int8 weights per output channel, uint8 activations with MinMax
ranges calibrated on real images.

Weights take 7 bits ([-64, 63]) unless 8 are asked for
(:data:`WEIGHT_BITS`): on x86 CPUs without VNNI (AVX2, AVX-512 without
VNNI), ONNX Runtime multiplies uint8 activations by int8 weights with
``vpmaddubsw``, which adds each pair of products into int16 and saturates
at 32767; with 8-bit weights a pair can reach 2 x 255 x 127 = 64770. On
such a CPU, ThunderNet's R-CNN fc (245 inputs) quantised with 8-bit
weights loses almost every detection (docs/int8.md); 7-bit weights cannot
overflow (2 x 255 x 64 = 32640) and cost little accuracy. ONNX Runtime's
``reduce_range`` is this option. 8 bits are for graphs that will run on
CPUs with VNNI or AMX only (int32 accumulation).

The graph's parts are told apart by the node names that the exporter gives
them after :class:`~.wrapper.LightHeadRCNNExport`'s submodules (:data:`PARTS`).
Only the parts named are quantised; everything else (the normalisation,
the RPN post-processing, PSRoIAlign, the R-CNN post-processing, both NMS)
stays fp32: they are box arithmetic, sorting and sampling, where int8 would
move boxes and reorder scores for no speed (they take no multiply-adds).

Calibration images go through the config's test pipeline (resize) and the
same padding and channel order as the graph's input (:func:`~.inputs.graph_feeds`:
the input and each image's size), so that the ranges are those the graph
meets at inference.

The int8 graph keeps the fp32 graph's interface (``input`` and the optional
``img_shape`` -> ``dets``, ``labels``) and its metadata
(``export.METADATA_KEY``), to which :data:`METADATA_KEY` adds the parts
quantised.

ONNX Runtime's optional pre-processing (``quant_pre_process``: shape
inference and graph optimisation before quantising) is not run: the
exporter has already folded BatchNorm into the convolutions and the
constants, and the session optimises the int8 graph when it loads it.
"""
import json
import logging
import os.path as osp
import tempfile


from .inputs import graph_feeds
from .wrapper import DeployError

#: weight bits -> ``quantize_static``'s ``reduce_range`` (module docstring).
WEIGHT_BITS = {7: True, 8: False}

# Part name -> the prefix of its nodes' names in the exported graph.
PARTS = {
    'backbone': '/backbone/',
    'thin_map': '/thin_map/',
    'rpn_head': '/rpn_head/',
    'rcnn_fcs': '/bbox_head/',
}
def part_of(name, default=None):
    """The part (a name of :data:`PARTS`) whose prefix starts the node name
    ``name``, or ``default``."""
    return next((p for p, prefix in PARTS.items() if name.startswith(prefix)),
                default)


def check_weight_bits(bits):
    """Stop unless ``bits`` is a width of :data:`WEIGHT_BITS`."""
    if bits not in WEIGHT_BITS:
        raise DeployError(f'weight_bits {bits}: choose 7 (any x86 CPU) or '
                          '8 (CPUs with VNNI or AMX)')


# What ``quantize_graph`` quantises unless told otherwise (docs/int8.md has
# the accuracy and speed of each part measured on its own).
DEFAULT_PARTS = ('backbone', 'thin_map', 'rpn_head', 'rcnn_fcs')
METADATA_KEY = 'shufflenet_det.int8_parts'


class ImageCalibrationReader:
    """ONNX Runtime's ``CalibrationDataReader`` over host images: batches of
    the graph's input (``batch_size`` images each; a graph with a fixed
    input shape gets exactly that shape).

    Args:
        images (iterable): uint8 BGR (3, h, w) images, e.g. from
            :func:`~.inputs.pipeline_images`.
        fill: :func:`~.inputs.input_fill`.
        batch_size (int), shape ((H, W) or None): the graph's input.
    """

    def __init__(self, images, fill, batch_size=1, shape=None):
        self.images, self.fill = iter(images), fill
        self.batch_size, self.shape = batch_size, shape
        self.seen = 0

    def get_next(self):
        batch = []
        for im in self.images:
            batch.append(im)
            if len(batch) == self.batch_size:
                break
        if len(batch) < self.batch_size:
            return None  # a partial batch does not fit a fixed batch size
        self.seen += len(batch)
        return graph_feeds(batch, self.fill, self.shape)

    def __iter__(self):
        return iter(self.get_next, None)


class _DropMessages(logging.Filter):
    def __init__(self, start):
        super().__init__()
        self.start = start

    def filter(self, record):
        return not str(record.msg).startswith(self.start)


def part_nodes(model, parts):
    """The names of the nodes of ``parts`` (names of :data:`PARTS`)."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise DeployError(f'unknown part(s) {sorted(unknown)}: choose from '
                          f'{", ".join(PARTS)}')
    prefixes = tuple(PARTS[p] for p in parts)
    # BatchNormalization (the demo's thin map, after the branches' sum) has
    # no int8 kernel in ONNX Runtime: quantised, it would run in fp32
    # between a DequantizeLinear and a QuantizeLinear.
    names = [n.name for n in model.graph.node if n.name.startswith(prefixes)
             and n.op_type != 'BatchNormalization']
    for p in parts:
        if not any(n.startswith(PARTS[p]) for n in names):
            raise DeployError(
                f'the graph has no node of the {p} (named {PARTS[p]}...): '
                'is it a graph of tools/deployment/export_onnx.py?')
    return names


def unshare_initializers(model):
    """Give each ``Identity`` of an initializer its own copy of it, in
    place; returns how many. torch's exporter writes equal weights once
    (zero biases, as BatchNorm folding gives them for untrained or
    identical statistics) and the other users read them through an
    ``Identity``; the quantiser then leaves such a bias fp32 ("Expected
    bias ... to be an initializer") and ONNX Runtime cannot fuse that
    convolution into ``QLinearConv``: it runs in fp32 between a
    DequantizeLinear and a QuantizeLinear."""
    from onnx import numpy_helper
    inits = {t.name: t for t in model.graph.initializer}
    copies = [n for n in model.graph.node
              if n.op_type == 'Identity' and n.input[0] in inits]
    for n in copies:
        array = numpy_helper.to_array(inits[n.input[0]])
        model.graph.initializer.append(
            numpy_helper.from_array(array, n.output[0]))
        model.graph.node.remove(n)
    return len(copies)


def quantize_graph(fp32_path, out, reader=None, parts=DEFAULT_PARTS,
                   cache=None, weight_bits=7):
    """Write the int8 graph of ``fp32_path`` to ``out``: the nodes of
    ``parts`` quantised (QDQ; int8 weights per output channel, uint8
    activations), calibrated by ``reader`` (:class:`ImageCalibrationReader`)
    with MinMax ranges. ``cache``: a JSON file of calibrated ranges; if it
    exists it is used instead of ``reader`` (one calibration for several
    choices of parts), else it is written. ``weight_bits``: 7 (the
    default: exact on every x86 CPU) or 8 (CPUs with VNNI or AMX only;
    module docstring).

    Returns:
        dict: ``parts``; ``int8_kernels`` (:func:`int8_kernels`) and
        ``int8_nodes``, their sum; ``convs_gemms``, how many Conv and Gemm
        nodes the fp32 graph has.
    """
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    check_weight_bits(weight_bits)
    model = onnx.load(fp32_path)
    nodes = part_nodes(model, parts)
    root = logging.getLogger()
    quiet = _DropMessages('Please consider')
    root.addFilter(quiet)  # the pre-processing advice: module docstring
    try:
        with tempfile.TemporaryDirectory(prefix='int8_') as tmp:
            cache = cache or osp.join(tmp, 'ranges.json')
            if reader is None and not osp.isfile(cache):
                raise DeployError('quantize_graph: no calibration reader '
                                  'and no cached ranges')
            source = fp32_path
            if unshare_initializers(model):
                source = osp.join(tmp, 'unshared.onnx')
                onnx.save(model, source)
            quantize_static(
                source, out, reader, quant_format=QuantFormat.QDQ,
                per_channel=True, reduce_range=WEIGHT_BITS[weight_bits],
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_quantize=nodes, calibration_cache_path=cache)
    except ValueError as e:
        if 'No data is collected' in str(e):
            raise DeployError(
                'no calibration batch was run: give at least one batch of '
                'the graph\'s batch size of calibration images') from e
        raise
    finally:
        root.removeFilter(quiet)
    qmodel = onnx.load(out)
    # The fp32 graph's metadata (export.METADATA_KEY: test_cfg,
    # preprocessing, classes; ONNX Runtime 1.31's quantiser keeps it, a
    # version that drops it gets it back here), and the parts, for
    # eval_onnx.py and benchmark.py to say what they run.
    from .export import write_metadata
    have = {e.key for e in qmodel.metadata_props}
    for entry in model.metadata_props:
        if entry.key not in have and entry.key != METADATA_KEY:
            qmodel.metadata_props.add().CopyFrom(entry)
    write_metadata(qmodel, list(parts), METADATA_KEY)
    _keep_defaults(model, qmodel)
    onnx.save(qmodel, out)
    kernels = int8_kernels(out)
    return dict(parts=list(parts), weight_bits=weight_bits,
                int8_kernels=kernels,
                int8_nodes=sum(kernels.values()),
                convs_gemms=sum(n.op_type in ('Conv', 'Gemm', 'MatMul')
                                for n in model.graph.node))


def _keep_defaults(fp32, int8):
    """The default values of the fp32 graph's optional inputs (initializers
    of a graph input's name: ``img_shape``), in the int8 graph too."""
    inputs = {i.name for i in fp32.graph.input}
    have = {t.name for t in int8.graph.initializer}
    int8_inputs = {i.name for i in int8.graph.input}
    for t in fp32.graph.initializer:
        if t.name in inputs and t.name not in have:
            if t.name not in int8_inputs:
                raise DeployError(f'the int8 graph lost the input {t.name}')
            int8.graph.initializer.append(t)


def int8_kernels(path):
    """How many of each int8 kernel ONNX Runtime runs for the graph at
    ``path``, after its own fusions (a DequantizeLinear -> Conv ->
    QuantizeLinear becomes one ``QLinearConv`` only where everything
    around the Conv is quantised): ``{op type: count}``."""
    import onnx
    import onnxruntime as ort
    with tempfile.TemporaryDirectory(prefix='int8_') as tmp:
        opts = ort.SessionOptions()
        # The fusions without the hardware-specific layout passes.
        opts.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
        opts.optimized_model_filepath = osp.join(tmp, 'optimized.onnx')
        ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])
        graph = onnx.load(opts.optimized_model_filepath).graph
    ops = [n.op_type for n in graph.node]
    return {op: ops.count(op) for op in sorted(set(ops))
            if op in ('QLinearConv', 'QGemm', 'QLinearMatMul',
                      'MatMulInteger', 'ConvInteger')}


def int8_parts(path):
    """The parts of a graph that :func:`quantize_graph` quantised, or None
    for an fp32 graph (one without QuantizeLinear nodes)."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    for entry in model.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    if any(n.op_type == 'QuantizeLinear' for n in model.graph.node):
        return ['(quantised by another tool)']
    return None
