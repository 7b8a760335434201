"""shufflenet_det.apis.onnxruntime: a graph's padded outputs as mmdet's
predictions (the boxes scaled back to the original image, the empty rows
dropped), the detector's refusal of anything but inference, and its
OpenVINO sibling. The
evaluation of a real graph is tests/deploy/test_eval_onnx.py's."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample

from shufflenet_det.apis.onnxruntime import (OnnxRuntimeDetector,
                                             OpenVINODetector, to_data_sample)


def test_to_data_sample_scales_back_and_drops_empty_rows():
    sample = DetDataSample(metainfo=dict(img_id=3, scale_factor=(2.0, 0.5)))
    dets = np.float32([[10, 10, 30, 20, 0.9], [2, 4, 6, 8, 0.4],
                       [0, 0, 0, 0, 0]])
    labels = np.int64([1, 0, -1])
    out = to_data_sample(dets, labels, sample)
    pred = out.pred_instances
    assert torch.equal(pred.bboxes, torch.tensor(
        [[5., 20., 15., 40.], [1., 8., 3., 16.]]))
    assert torch.allclose(pred.scores, torch.tensor([0.9, 0.4]))
    assert pred.labels.tolist() == [1, 0]
    assert out.img_id == 3 and 'pred_instances' not in sample


def test_only_predict_mode():
    class Graph:
        path = 'model.onnx'

        def detect(self, images):
            return (np.float32([[[1, 2, 3, 4, 0.5]]]), np.int64([[2]]))

    det = OnnxRuntimeDetector(Graph())
    sample = DetDataSample(metainfo=dict(scale_factor=(1.0, 1.0)))
    batch = dict(inputs=[torch.zeros(3, 8, 8, dtype=torch.uint8)],
                 data_samples=[sample])
    out = det.test_step(batch)
    assert len(out) == 1 and out[0].pred_instances.labels.tolist() == [2]
    assert det.val_step(batch)[0].pred_instances.scores.tolist() == [0.5]
    assert det.path == 'model.onnx'
    with pytest.raises(ValueError, match='inference only'):
        det(batch['inputs'], [sample], mode='loss')


def test_openvino_detector_shares_the_code():
    """OpenVINODetector: OnnxRuntimeDetector's predictions of any graph
    with ``detect``; its precision is the graph's (read back)."""
    class Graph:
        path = 'model_int8.xml'
        precision = 'f32'

        def detect(self, images):
            return (np.float32([[[2, 2, 6, 6, 0.7], [0, 0, 0, 0, 0]]]),
                    np.int64([[1, -1]]))

    det = OpenVINODetector(Graph())
    assert det.precision == 'f32' and det.path == 'model_int8.xml'
    sample = DetDataSample(metainfo=dict(scale_factor=(2.0, 2.0)))
    out = det.test_step(dict(inputs=[torch.zeros(3, 8, 8, dtype=torch.uint8)],
                             data_samples=[sample]))
    assert out[0].pred_instances.bboxes.tolist() == [[1., 1., 3., 3.]]
    with pytest.raises(ValueError, match='OpenVINODetector runs inference '
                       'only'):
        det([torch.zeros(3, 8, 8)], [sample], mode='tensor')
