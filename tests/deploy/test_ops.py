"""The export's operators: PSRoIAlign from ONNX operators against
torchvision's ps_roi_align, and ONNX NonMaxSuppression's semantics in
PyTorch against ONNX Runtime, in PyTorch and in ONNX Runtime."""
import numpy as np
import pytest
import torch
from torchvision.ops import nms, ps_roi_align as tv_ps_roi_align

from shufflenet_det.deploy.ops import OPSET, onnx_nms, ps_roi_align
from shufflenet_det.models.layers import ps_align_max

ort = pytest.importorskip('onnxruntime')
# torch.onnx.export(dynamo=False) says it is the legacy exporter (see
# shufflenet_det/deploy/export.py); the tracer's notes concern constants.
pytestmark = pytest.mark.filterwarnings(
    'ignore::DeprecationWarning', 'ignore::torch.jit.TracerWarning')


def _rois(b, r, h, w, gen, outside=False):
    """(B, R, 4) boxes of up to 300 px in an image of (h, w) * 32 pixels,
    clipped to it unless ``outside`` (then spread beyond it)."""
    size = torch.tensor([w * 32., h * 32.])
    xy = torch.rand(b, r, 2, generator=gen) * size
    wh = torch.rand(b, r, 2, generator=gen) * 300
    rois = torch.cat([xy, xy + wh], -1)
    if outside:
        return rois * 1.5 - 100
    rois[..., 0::2] = rois[..., 0::2].clamp(0, w * 32)
    rois[..., 1::2] = rois[..., 1::2].clamp(0, h * 32)
    rois[0, 0] = 0  # empty RoIs at the corners
    rois[0, 1] = torch.tensor([w * 32., h * 32.] * 2)
    return rois


def _torchvision(feat, rois):
    b, r = rois.shape[:2]
    index = torch.arange(b).repeat_interleave(r)[:, None].float()
    return tv_ps_roi_align(feat, torch.cat([index, rois.reshape(-1, 4)], 1),
                           7, 1 / 32, 2)


class PSRoIAlign(torch.nn.Module):

    def forward(self, feat, rois):
        return ps_roi_align(feat, rois, 7, 2, 1 / 32)


@pytest.fixture(scope='module')
def ps_session(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('onnx') / 'ps.onnx')
    feat, rois = torch.randn(2, 490, 9, 11), torch.rand(2, 30, 4) * 100
    torch.onnx.export(
        PSRoIAlign(), (feat, rois), path, dynamo=False, opset_version=OPSET,
        input_names=['feat', 'rois'], output_names=['out'],
        dynamic_axes={'feat': {0: 'b', 2: 'h', 3: 'w'}, 'rois': {0: 'b',
                                                                 1: 'r'}})
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(path, opts,
                                providers=['CPUExecutionProvider'])


@pytest.mark.parametrize('b,h,w,r', [(2, 9, 11, 30), (3, 5, 20, 7),
                                     (1, 25, 38, 200)])
@pytest.mark.parametrize('outside', [False, True])
def test_ps_roi_align_matches_torchvision(ps_session, b, h, w, r, outside):
    gen = torch.Generator().manual_seed(b * 100 + r)
    feat = torch.randn(b, 490, h, w, generator=gen)
    rois = _rois(b, r, h, w, gen, outside)
    ref = _torchvision(feat, rois)
    ours = ps_roi_align(feat, rois, 7, 2, 1 / 32)
    assert ours.shape == ref.shape == (b * r, 10, 7, 7)
    torch.testing.assert_close(ours, ref, atol=2e-5, rtol=1e-5)
    out = ps_session.run(None, {'feat': feat.numpy(),
                                'rois': rois.numpy()})[0]
    np.testing.assert_allclose(out, ref.numpy(), atol=3e-5, rtol=1e-5)


class PSAlignMax(torch.nn.Module):

    def forward(self, feat, rois):
        return ps_align_max(feat, rois, 7, 1 / 32, 2)


@pytest.mark.parametrize('outside', [False, True])
def test_ps_align_max_in_onnxruntime(tmp_path, outside):
    """The official max pooling exports as it runs: one graph, other
    batch sizes, map sizes and RoI counts than the traced ones."""
    gen = torch.Generator().manual_seed(7)
    path = str(tmp_path / 'psmax.onnx')
    feat = torch.randn(2, 490, 9, 11, generator=gen)
    rois = torch.cat([torch.zeros(30, 1), torch.rand(30, 4) * 100], 1)
    torch.onnx.export(
        PSAlignMax(), (feat, rois), path, dynamo=False, opset_version=OPSET,
        input_names=['feat', 'rois'], output_names=['out'],
        dynamic_axes={'feat': {0: 'b', 2: 'h', 3: 'w'}, 'rois': {0: 'n'}})
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for b, h, w, r in [(3, 5, 20, 7), (1, 25, 38, 200)]:
        feat = torch.randn(b, 490, h, w, generator=gen)
        boxes = _rois(b, r, h, w, gen, outside)
        index = torch.arange(b).repeat_interleave(r)[:, None].float()
        rois = torch.cat([index, boxes.reshape(-1, 4)], 1)
        ref = ps_align_max(feat, rois, 7, 1 / 32, 2)
        out = sess.run(None, {'feat': feat.numpy(), 'rois': rois.numpy()})[0]
        np.testing.assert_allclose(out, ref.numpy(), atol=3e-5, rtol=1e-5)


class NMS(torch.nn.Module):

    def __init__(self, max_output, iou, score_thr):
        super().__init__()
        self.args = (max_output, iou, score_thr)

    def forward(self, boxes, scores):
        return onnx_nms(boxes, scores, *self.args)


def _boxes(b, n, gen):
    xy = torch.rand(b, n, 2, generator=gen) * 200
    wh = torch.rand(b, n, 2, generator=gen) * 60 + 1
    return torch.cat([xy, xy + wh], -1)


@pytest.mark.parametrize('max_output,score_thr', [(1000, -0.5), (7, 0.3),
                                                  (50, 0.05)])
def test_onnx_nms_in_pytorch_and_onnxruntime(tmp_path, max_output,
                                             score_thr):
    """Rows (batch, class, box) in the same order in both, per batch and
    class what torchvision's NMS keeps of the boxes above the score
    threshold, cut at max_output."""
    gen = torch.Generator().manual_seed(max_output)
    b, c, n = 2, 3, 400
    boxes = _boxes(b, n, gen)
    scores = torch.rand(b, c, n, generator=gen)
    scores[0, 1] = -1  # a class with no box above the threshold
    model = NMS(max_output, 0.5, score_thr)
    ours = model(boxes, scores)
    for bi in range(b):
        for ci in range(c):
            rows = ours[(ours[:, 0] == bi) & (ours[:, 1] == ci), 2]
            cand = (scores[bi, ci] > score_thr).nonzero()[:, 0]
            ref = cand[nms(boxes[bi, cand], scores[bi, ci, cand], 0.5)]
            assert rows.tolist() == ref[:max_output].tolist()
    path = str(tmp_path / 'nms.onnx')
    torch.onnx.export(model, (boxes, scores), path, dynamo=False,
                      opset_version=OPSET, input_names=['boxes', 'scores'],
                      output_names=['selected'],
                      dynamic_axes={'boxes': {0: 'b', 1: 'n'},
                                    'scores': {0: 'b', 1: 'c', 2: 'n'}})
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    # Other inputs than the traced ones: the graph is not specialised.
    for seed in (1, 2):
        gen = torch.Generator().manual_seed(seed)
        boxes = _boxes(3, 250, gen)
        scores = torch.rand(3, 2, 250, generator=gen)
        out = sess.run(None, {'boxes': boxes.numpy(),
                              'scores': scores.numpy()})[0]
        assert out.tolist() == model(boxes, scores).tolist()
