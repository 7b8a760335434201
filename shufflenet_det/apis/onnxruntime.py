"""A Light-Head R-CNN exported to ONNX and run by ONNX Runtime, as an
mmengine model: ``test_step`` / ``val_step`` take the data loader's batch
and return ``DetDataSample`` s, so mmengine's test loop and ``Evaluator``
run it as any mmdet detector."""
import numpy as np
import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData

from ..deploy.runtime import OrtGraph


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
        graph (str | OrtGraph): the .onnx file, or the graph in a session.
        threads (int, optional): ONNX Runtime's intra-op threads (with a
            path).
        fill (ndarray, optional): the padding colour (with a path);
            default: from the graph's metadata.
        data_preprocessor (dict, optional): mmengine's; the default only
            casts the batch (the graph normalises and pads itself).
    """

    def __init__(self, graph, threads=None, fill=None,
                 data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        if isinstance(graph, str):
            graph = OrtGraph(graph, threads, fill)
        self.graph = graph

    @classmethod
    def from_model(cls, model, batch_size, shape, path, threads=None):
        """``model`` exported for ``batch_size`` images of ``shape``
        (:meth:`OrtGraph.export`), as a detector."""
        return cls(OrtGraph.export(model, batch_size, shape, path, threads))

    @property
    def path(self):
        return self.graph.path

    def forward(self, inputs, data_samples=None, mode='predict'):
        if mode != 'predict':
            raise ValueError(f'OnnxRuntimeDetector runs inference only '
                             f'(mode="predict"), got mode="{mode}"')
        results = []
        for img, sample in zip(inputs, data_samples):
            dets, labels = self.graph.detect([img])[:2]
            results.append(to_data_sample(dets[0], labels[0], sample))
        return results
