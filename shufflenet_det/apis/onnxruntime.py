"""A Light-Head R-CNN exported to ONNX and run by ONNX Runtime, called as
the benchmark calls a PyTorch detector."""


class OnnxRuntimeDetector:
    """``model`` exported to ONNX (:mod:`shufflenet_det.deploy`) and run
    by ONNX Runtime on the CPU, called as the benchmark times a detector:
    from host images (uint8 (3, H, W), BGR as mmdet's loader gives them) to
    detections. The host-side part is what a deployment does: the batch
    stacked as float32 RGB and padded to multiples of 32 with the mean
    colour (which the graph's normalisation turns into mmdet's zero
    padding).

    Args:
        model: a ``LightHeadRCNN`` in eval mode.
        batch_size (int), shape ((H, W)): the images that will be run; the
            graph is exported for exactly these (padded).
        path (str): where to write the graph.
        threads (int, optional): ONNX Runtime's intra-op threads.
    """

    def __init__(self, model, batch_size, shape, path, threads=None):
        from shufflenet_det.deploy import export_onnx, ort_session
        from shufflenet_det.deploy.quantize import input_fill
        h, w = shape
        self.shape = (h, w)
        self.padded = (-(-h // 32) * 32, -(-w // 32) * 32)
        self.batch_size, self.threads = batch_size, threads
        wrapper = export_onnx(model, path, self.padded, batch_size)
        # The graph flips RGB to BGR before normalising when to_bgr.
        self.fill = input_fill(wrapper.mean.flatten().numpy(),
                               bgr_to_rgb=not wrapper.to_bgr)
        self.session = ort_session(path, threads)
        self.path = path

    def int8(self, path, calib_images):
        """The same detector quantised to int8
        (:func:`shufflenet_det.deploy.quantize.quantize_graph`, its default
        parts), calibrated on ``calib_images`` (host images as
        ``__call__`` takes, at least one batch): a new detector, its graph
        at ``path``."""
        import copy

        from shufflenet_det.deploy import ort_session
        from shufflenet_det.deploy.quantize import (ImageCalibrationReader,
                                                    quantize_graph)
        reader = ImageCalibrationReader(calib_images, self.fill,
                                        self.batch_size, self.padded)
        quantize_graph(self.path, path, reader)
        other = copy.copy(self)
        other.session, other.path = ort_session(path, self.threads), path
        return other

    def __call__(self, images):
        from shufflenet_det.deploy.quantize import graph_input
        return self.session.run(
            None, {'input': graph_input(images, self.fill, self.padded)})
