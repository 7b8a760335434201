"""An exported graph in ONNX Runtime or OpenVINO, fed host images: what a
deployment runs, and what the benchmark times and the ONNX evaluation runs
(``shufflenet_det.apis.OnnxRuntimeDetector`` and ``OpenVINODetector`` wrap
it as an mmengine model)."""
import functools

from .export import export_onnx, ort_session, read_metadata
from .inputs import graph_feeds, graph_input, input_fill


def export_padded(model, batch_size, shape, path):
    """``model`` (a ``LightHeadRCNN`` in eval mode) exported to ``path`` for
    ``batch_size`` images of ``shape`` (H, W; padded to multiples of 32).
    Returns the graph's padding colour (:func:`~.inputs.input_fill`)."""
    h, w = shape
    padded = (-(-h // 32) * 32, -(-w // 32) * 32)
    wrapper = export_onnx(model, path, padded, batch_size)
    # The graph flips RGB to BGR before normalising when to_bgr.
    return input_fill(wrapper.mean.flatten().numpy(),
                      bgr_to_rgb=not wrapper.to_bgr)


class OrtGraph:
    """A Light-Head R-CNN graph (:func:`~.export.export_onnx`) in an ONNX
    Runtime CPU session, called with host images (uint8 (3, H, W), BGR as
    mmdet's loader gives them). The host-side part is what a deployment
    does: the batch stacked as float32 RGB and padded (to the graph's fixed
    input shape, or to multiples of 32) with ``fill``.

    Args:
        path (str): the .onnx file.
        threads (int, optional): the runtime's intra-op threads.
        fill (ndarray, optional): the padding colour
            (:func:`~.inputs.input_fill`); default: from the graph's
            metadata (its mean, std, channel order and pad value).
    """
    #: the runtime's name, as reports print it.
    runtime = 'ONNX Runtime'

    def __init__(self, path, threads=None, fill=None):
        self.path, self.threads = path, threads
        self.session = self._session(path, threads)
        n, _, h, w = self.session.get_inputs()[0].shape
        self.batch_size = n if isinstance(n, int) else None
        # A graph with a fixed input shape gets images padded to it.
        fixed = isinstance(h, int) and isinstance(w, int)
        self.shape = (h, w) if fixed else None
        if fill is None:
            pre = self.metadata['preprocess']
            fill = input_fill(pre['mean'], pre['bgr_to_rgb'], pre['std'],
                              pre['pad_value'])
        self.fill = fill

    def _session(self, path, threads):
        return ort_session(path, threads)

    @functools.cached_property
    def metadata(self):
        """The graph's metadata (class names, pre-processing, test_cfg),
        read once."""
        return self._metadata(self.path) or {}

    def _metadata(self, path):
        return read_metadata(path)

    @classmethod
    def export(cls, model, batch_size, shape, path, threads=None, **kwargs):
        """``model`` exported for ``batch_size`` images of ``shape``
        (:func:`export_padded`) to ``path``, in a session (``kwargs``:
        the class's own arguments)."""
        fill = export_padded(model, batch_size, shape, path)
        return cls(path, threads, fill, **kwargs)

    def calibration(self, images):
        """A calibration reader (:class:`~.quantize.ImageCalibrationReader`)
        over host images, in batches of the graph's batch size and
        shape: what both runtimes' int8 are calibrated on."""
        from .quantize import ImageCalibrationReader
        return ImageCalibrationReader(images, self.fill,
                                      self.batch_size or 1, self.shape)

    def int8(self, path, calib_images):
        """The same graph quantised to int8
        (:func:`~.quantize.quantize_graph`, its default parts), calibrated
        on ``calib_images`` (host images, at least one batch), written to
        ``path``: a new :class:`OrtGraph`."""
        from .quantize import quantize_graph
        quantize_graph(self.path, path, self.calibration(calib_images))
        return type(self)(path, self.threads, self.fill)

    def inputs(self, images):
        """The graph's ``input`` for host images, all of it the images'
        (``img_shape`` left to its default), as a timing feeds it."""
        return {'input': graph_input(images, self.fill, self.shape)}

    def __call__(self, images):
        """The graph's outputs (dets, labels) for a batch of host images of
        one size."""
        return self.session.run(None, self.inputs(images))

    def detect(self, images):
        """The graph's outputs for host images of any sizes, each image's
        own size as ``img_shape`` (the graph clips its boxes to it) and no
        padding beyond the graph's own."""
        return self.session.run(
            None, graph_feeds(images, self.fill, self.shape, divisor=1))


class OpenVINOGraph(OrtGraph):
    """:class:`OrtGraph` in OpenVINO on the CPU
    (:func:`~.openvino.ov_compile`): the .onnx graph, or an int8 IR
    (.xml) of :func:`~.openvino.ov_quantize`.

    Args:
        precision (str): the inference precision, 'f32' (default) or
            'bf16'; an int8 IR runs its quantised layers in int8 and the
            rest at this precision. ``.precision`` is what the compiled
            model runs, read back.
    """
    runtime = 'OpenVINO'

    def __init__(self, path, threads=None, fill=None, precision='f32'):
        self._asked = precision
        super().__init__(path, threads, fill)
        self.precision = self.session.precision

    def _session(self, path, threads):
        from .openvino import ov_compile
        return ov_compile(path, self._asked, threads)

    def _metadata(self, path):
        from .openvino import ir_metadata
        return (ir_metadata(path) if str(path).endswith('.xml')
                else read_metadata(path))

    def int8(self, path, calib_images):
        """The graph's int8 IR (:func:`~.openvino.ov_quantize`, the default
        parts; ``path``: the .xml) calibrated on ``calib_images`` as
        :meth:`OrtGraph.int8` is, at this graph's precision: a new
        :class:`OpenVINOGraph`."""
        from .openvino import ov_quantize
        ov_quantize(self.path, path, self.calibration(calib_images))
        return type(self)(path, self.threads, self.fill, self._asked)
