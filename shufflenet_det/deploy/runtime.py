"""An exported graph in ONNX Runtime, fed host images: what a deployment
runs, and what the benchmark times and the ONNX evaluation runs
(``shufflenet_det.apis.OnnxRuntimeDetector`` wraps it as an mmengine
model)."""
from .export import export_onnx, ort_session, read_metadata
from .inputs import graph_feeds, graph_input, input_fill


class OrtGraph:
    """A Light-Head R-CNN graph (:func:`~.export.export_onnx`) in an ONNX
    Runtime CPU session, called with host images (uint8 (3, H, W), BGR as
    mmdet's loader gives them). The host-side part is what a deployment
    does: the batch stacked as float32 RGB and padded (to the graph's fixed
    input shape, or to multiples of 32) with ``fill``.

    Args:
        path (str): the .onnx file.
        threads (int, optional): ONNX Runtime's intra-op threads.
        fill (ndarray, optional): the padding colour
            (:func:`~.inputs.input_fill`); default: from the graph's
            metadata (its mean, std, channel order and pad value).
    """

    def __init__(self, path, threads=None, fill=None):
        self.path, self.threads = path, threads
        self.session = ort_session(path, threads)
        n, _, h, w = self.session.get_inputs()[0].shape
        self.batch_size = n if isinstance(n, int) else None
        # A graph with a fixed input shape gets images padded to it.
        fixed = isinstance(h, int) and isinstance(w, int)
        self.shape = (h, w) if fixed else None
        if fill is None:
            pre = read_metadata(path)['preprocess']
            fill = input_fill(pre['mean'], pre['bgr_to_rgb'], pre['std'],
                              pre['pad_value'])
        self.fill = fill

    @classmethod
    def export(cls, model, batch_size, shape, path, threads=None):
        """``model`` (a ``LightHeadRCNN`` in eval mode) exported for
        ``batch_size`` images of ``shape`` (H, W; padded to multiples of
        32) to ``path``, in a session."""
        h, w = shape
        padded = (-(-h // 32) * 32, -(-w // 32) * 32)
        wrapper = export_onnx(model, path, padded, batch_size)
        # The graph flips RGB to BGR before normalising when to_bgr.
        fill = input_fill(wrapper.mean.flatten().numpy(),
                          bgr_to_rgb=not wrapper.to_bgr)
        return cls(path, threads, fill)

    def int8(self, path, calib_images):
        """The same graph quantised to int8
        (:func:`~.quantize.quantize_graph`, its default parts), calibrated
        on ``calib_images`` (host images, at least one batch), written to
        ``path``: a new :class:`OrtGraph`."""
        from .quantize import ImageCalibrationReader, quantize_graph
        reader = ImageCalibrationReader(calib_images, self.fill,
                                        self.batch_size or 1, self.shape)
        quantize_graph(self.path, path, reader)
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
