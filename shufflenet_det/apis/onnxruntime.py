"""A Light-Head R-CNN exported to ONNX and run by ONNX Runtime or OpenVINO,
as an mmengine model: ``test_step`` / ``val_step`` take the data loader's
batch and return ``DetDataSample`` s, so mmengine's test loop and
``Evaluator`` run it as any mmdet detector."""
import numpy as np
import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData

from ..deploy.runtime import OpenVINOGraph, OrtGraph


def to_data_sample(dets, labels, sample):
    """One image's padded graph outputs (dets (K, 5), labels (K, )) as
    mmdet's prediction: boxes (the graph clips them to the image) scaled
    back to the original image, as mmdet's ``predict`` does."""
    keep = dets[:, 4] > 0
    boxes = dets[keep, :4].copy()
    sx, sy = sample.scale_factor
    boxes /= np.float32([sx, sy, sx, sy])
    out = sample.clone()
    out.pred_instances = InstanceData(
        bboxes=torch.from_numpy(boxes),
        scores=torch.from_numpy(dets[keep, 4].copy()),
        labels=torch.from_numpy(labels[keep].copy()))
    return out


class OnnxRuntimeDetector(BaseModel):
    """An exported graph (:func:`shufflenet_det.deploy.export_onnx`) in
    ONNX Runtime on the CPU, as an mmengine model.

    Each image of a batch runs alone with its size as ``img_shape`` (the
    graph pads it to multiples of 32 and clips its boxes to it, as mmdet
    does; a graph with a fixed input shape gets the image padded to it,
    which must hold it); the boxes are scaled back to the original image.
    The host-image interface of :class:`~shufflenet_det.deploy.runtime.
    OrtGraph` (``graph``: ``__call__``, ``inputs``) is what the benchmark
    times.

    Args:
        graph (str | OrtGraph): the .onnx file, or the graph in a session
            (any object with ``detect``, e.g. an :class:`~shufflenet_det.
            deploy.runtime.OpenVINOGraph`).
        threads (int, optional): the runtime's intra-op threads (with a
            path).
        fill (ndarray, optional): the padding colour (with a path);
            default: from the graph's metadata.
        data_preprocessor (dict, optional): mmengine's; the default only
            casts the batch (the graph normalises and pads itself).
    """
    #: what a path is opened with.
    graph_type = OrtGraph

    def __init__(self, graph, threads=None, fill=None,
                 data_preprocessor=None, **graph_kwargs):
        super().__init__(data_preprocessor=data_preprocessor)
        if isinstance(graph, str):
            graph = self.graph_type(graph, threads, fill, **graph_kwargs)
        self.graph = graph

    @classmethod
    def from_model(cls, model, batch_size, shape, path, threads=None):
        """``model`` exported for ``batch_size`` images of ``shape``
        (:meth:`OrtGraph.export`), as a detector."""
        return cls(cls.graph_type.export(model, batch_size, shape, path,
                                         threads))

    @property
    def path(self):
        return self.graph.path

    def forward(self, inputs, data_samples=None, mode='predict'):
        if mode != 'predict':
            raise ValueError(f'{type(self).__name__} runs inference only '
                             f'(mode="predict"), got mode="{mode}"')
        results = []
        for img, sample in zip(inputs, data_samples):
            dets, labels = self.graph.detect([img])[:2]
            results.append(to_data_sample(dets[0], labels[0], sample))
        return results


class OpenVINODetector(OnnxRuntimeDetector):
    """:class:`OnnxRuntimeDetector` in OpenVINO on the CPU: the .onnx graph
    or an int8 IR (.xml) of :func:`shufflenet_det.deploy.ov_quantize`.

    Args:
        precision (str): OpenVINO's inference precision, 'f32' (default)
            or 'bf16' (:func:`shufflenet_det.deploy.ov_compile`); read back
            as ``.precision``.
    """
    graph_type = OpenVINOGraph

    def __init__(self, graph, threads=None, fill=None, precision='f32',
                 data_preprocessor=None):
        super().__init__(graph, threads, fill, data_preprocessor,
                         precision=precision)

    @property
    def precision(self):
        return self.graph.precision
