"""Static int8 quantisation of an exported Light-Head R-CNN graph with ONNX
Runtime's own tools (``onnxruntime.quantization.quantize_static``): QDQ
format, int8 weights per output channel, uint8 activations with MinMax
ranges calibrated on real images.

The graph's parts are told apart by the node names that the exporter gives
them after :class:`~.wrapper.LightHeadRCNNExport`'s submodules (:data:`PARTS`).
Only the parts named are quantised; everything else (the normalisation,
the RPN post-processing, PSRoIAlign, the R-CNN post-processing, both NMS)
stays fp32: they are box arithmetic, sorting and sampling, where int8 would
move boxes and reorder scores for no speed (they take no multiply-adds).

Calibration images go through the config's test pipeline (resize) and the
same padding and channel order as the graph's input (:func:`graph_feeds`:
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

import numpy as np

from .wrapper import DeployError

# Part name -> the prefix of its nodes' names in the exported graph.
PARTS = {
    'backbone': '/backbone/',
    'thin_map': '/thin_map/',
    'rpn_head': '/rpn_head/',
    'rcnn_fcs': '/bbox_head/',
}
# What ``quantize_graph`` quantises unless told otherwise (docs/int8.md has
# the accuracy and speed of each part measured on its own).
DEFAULT_PARTS = ('backbone', 'thin_map', 'rpn_head', 'rcnn_fcs')
METADATA_KEY = 'shufflenet_det.int8_parts'


def input_fill(mean, bgr_to_rgb, std=None, pad_value=0):
    """The padding colour of the graph's input, (3, 1, 1) float32 RGB:
    ``mean + pad_value * std`` (given in the order after mmdet's optional
    BGR -> RGB flip), which the graph's normalisation turns into mmdet's
    ``pad_value`` padding. The graph sets what lies outside each image's
    ``img_shape`` to that itself: the colour matters only to a caller who
    leaves ``img_shape`` out."""
    mean = np.asarray(mean, np.float32).reshape(3)
    if std is not None:
        mean = mean + np.float32(pad_value) * np.asarray(
            std, np.float32).reshape(3)
    if not bgr_to_rgb:
        mean = mean[::-1]  # the model works in BGR: its mean is BGR
    return np.ascontiguousarray(mean).reshape(3, 1, 1)


def config_fill(cfg):
    """:func:`input_fill` of a config's ``data_preprocessor``."""
    mp = cfg.model.data_preprocessor
    return input_fill(mp.get('mean') or [0, 0, 0],
                      mp.get('bgr_to_rgb', False)
                      or mp.get('rgb_to_bgr', False),
                      mp.get('std') or [1, 1, 1], mp.get('pad_value', 0))


def graph_input(images, fill, shape=None, divisor=32):
    """Host images (uint8 BGR (3, h, w), tensors or arrays) -> the graph's
    input: float32 RGB (N, 3, H, W), each image at the top left, the rest
    ``fill``. H, W: ``shape`` if given (a graph with a fixed input), else
    the largest image rounded up to multiples of ``divisor``."""
    arrays = [np.asarray(im) for im in images]
    if shape is None:
        h = max(a.shape[-2] for a in arrays)
        w = max(a.shape[-1] for a in arrays)
        shape = (-(-h // divisor) * divisor, -(-w // divisor) * divisor)
    x = np.empty((len(arrays), 3, *shape), np.float32)
    x[:] = fill
    for i, a in enumerate(arrays):
        h, w = a.shape[-2:]
        if h > shape[0] or w > shape[1]:
            raise DeployError(
                f'an image of {h}x{w} does not fit the graph\'s fixed input '
                f'{shape[0]}x{shape[1]}: export the graph with --dynamic, or '
                'with a --shape that holds the resized images')
        x[i, :, :h, :w] = a[::-1]  # BGR -> RGB
    return x


def image_sizes(images):
    """The (h, w) of each host image (3, h, w): the graph's ``img_shape``,
    int64 (N, 2)."""
    return np.asarray([np.shape(im)[-2:] for im in images],
                      np.int64).reshape(-1, 2)


def graph_feeds(images, fill, shape=None, divisor=32):
    """The graph's inputs for host images (:func:`graph_input`): ``input``
    and ``img_shape``, each image's own size, to which the graph clips its
    boxes and outside which it sets the input to the padding colour."""
    return {'input': graph_input(images, fill, shape, divisor),
            'img_shape': image_sizes(images)}


def input_dims(path_or_model):
    """The graph input's (N, H, W): ints where fixed, None where dynamic."""
    import onnx
    model = (onnx.load(path_or_model, load_external_data=False)
             if isinstance(path_or_model, str) else path_or_model)
    inputs = [i for i in model.graph.input if i.name == 'input']
    if not inputs:
        raise DeployError('the graph has no input named "input": export it '
                          'with tools/deployment/export_onnx.py')
    dims = inputs[0].type.tensor_type.shape.dim
    n, _, h, w = (d.dim_value if d.HasField('dim_value') else None
                  for d in dims)
    return n, h, w


def pipeline_images(cfg, paths):
    """Yields each image of ``paths`` as the config's test pipeline makes
    it (its annotation loading left out): uint8 BGR (3, h, w) tensors."""
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope

    import shufflenet_det  # noqa: F401  (the project's transforms)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    steps = [t for t in cfg.test_dataloader.dataset.pipeline
             if t['type'] != 'LoadAnnotations']
    pipeline = Compose(steps)
    for i, path in enumerate(paths):
        out = pipeline(dict(img_path=path, img_id=i))
        if out is None:
            raise DeployError(f'{path}: the test pipeline dropped this image '
                              '(cannot be decoded?): remove it from the '
                              'calibration images')
        yield out['inputs']


class ImageCalibrationReader:
    """ONNX Runtime's ``CalibrationDataReader`` over host images: batches of
    the graph's input (``batch_size`` images each; a graph with a fixed
    input shape gets exactly that shape).

    Args:
        images (iterable): uint8 BGR (3, h, w) images, e.g. from
            :func:`pipeline_images`.
        fill: :func:`input_fill`.
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
                   cache=None):
    """Write the int8 graph of ``fp32_path`` to ``out``: the nodes of
    ``parts`` quantised (QDQ; int8 weights per output channel, uint8
    activations), calibrated by ``reader`` (:class:`ImageCalibrationReader`)
    with MinMax ranges. ``cache``: a JSON file of calibrated ranges; if it
    exists it is used instead of ``reader`` (one calibration for several
    choices of parts), else it is written.

    Returns:
        dict: ``parts``; ``int8_kernels`` (:func:`int8_kernels`) and
        ``int8_nodes``, their sum; ``convs_gemms``, how many Conv and Gemm
        nodes the fp32 graph has.
    """
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
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
                per_channel=True, activation_type=QuantType.QUInt8,
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
    return dict(parts=list(parts), int8_kernels=kernels,
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
