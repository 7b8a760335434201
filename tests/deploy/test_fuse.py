"""BatchNorm folding for the PyTorch path: every backbone family's
BatchNorm layers are gone and the detector's outputs are unchanged
(ShuffleNet v2* has ShuffleNet v2's modules, plus one more ConvModule)."""
import os.path as osp

import pytest
import torch
from deploy_helpers import ROOT, as_batch, decisive_model, table7_config
from torch.nn.modules.batchnorm import _BatchNorm

from shufflenet_det.deploy import count_batchnorm, fold_batchnorm
from shufflenet_det.apis.detector import build_detector
from shufflenet_det.utils.inputs import mmdet_batch


@pytest.mark.parametrize('family', ['shufflenetv2', 'shufflenetv1',
                                    'mobilenetv2', 'xception'])
def test_fold_batchnorm_keeps_the_outputs(shapes_val, family):
    bgr, _ = as_batch(shapes_val[:1], (128, 160))
    model = decisive_model(table7_config(family, '40m'), bgr)
    data = model.data_preprocessor(mmdet_batch(bgr), False)
    with torch.no_grad():
        ref = model.backbone(data['inputs'])
        before = model.test_step(mmdet_batch(bgr))[0].pred_instances
        folded = fold_batchnorm(model)
        assert folded > 0 and count_batchnorm(model) == 0
        out = model.backbone(data['inputs'])
        after = model.test_step(mmdet_batch(bgr))[0].pred_instances
    for a, b in zip(ref, out):
        # Float rounding of a deep network: relative to the largest value.
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-3 * a.abs().max())
    torch.testing.assert_close(after.scores[:20], before.scores[:20],
                               rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(after.bboxes[:20], before.bboxes[:20],
                               rtol=1e-3, atol=1e-2)


def test_fold_batchnorm_needs_eval_mode():
    model = build_detector(table7_config('shufflenetv2', '40m'))
    with pytest.raises(ValueError, match='eval'):
        fold_batchnorm(model.train())


def test_the_thin_maps_batchnorm_folds(shapes_val):
    """The demo's thin map has a BatchNorm on the sum of its two branches:
    it folds into both branches' last convolutions, and the thin map and
    the detections are unchanged."""
    bgr, _ = as_batch(shapes_val[:1], (128, 160))
    model = decisive_model(
        osp.join(ROOT, 'configs', 'demo', 'lighthead_v2star_shapes.py'), bgr)
    norm = model.thin_map.norm
    assert isinstance(norm, _BatchNorm)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():  # statistics and affine far from the identity
        norm.running_mean.normal_(0, 0.5, generator=g)
        norm.running_var.uniform_(0.2, 3.0, generator=g)
        norm.weight.uniform_(0.5, 2.0, generator=g)
        norm.bias.normal_(0, 0.5, generator=g)
    data = model.data_preprocessor(mmdet_batch(bgr), False)
    with torch.no_grad():
        c5 = model.backbone(data['inputs'])[-1]
        ref = model.thin_map(c5)
        before = model.test_step(mmdet_batch(bgr))[0].pred_instances
        fold_batchnorm(model)
        assert model.thin_map.norm is None and count_batchnorm(model) == 0
        out = model.thin_map(c5)
        after = model.test_step(mmdet_batch(bgr))[0].pred_instances
    assert (ref > 0).float().mean() > 0.2  # the ReLU passes a good share
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * ref.abs().max())
    torch.testing.assert_close(after.scores[:20], before.scores[:20],
                               rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(after.bboxes[:20], before.bboxes[:20],
                               rtol=1e-3, atol=1e-2)


def test_the_demo_graph_has_no_batchnorm(shapes_val, tmp_path):
    """The export folds the thin map's BN (torch's exporter would leave it
    as a BatchNormalization node, which int8 cannot run); the graph's
    detections are the unfolded model's."""
    import onnx

    from shufflenet_det.deploy import export_onnx, ort_session
    from shufflenet_det.deploy.inputs import graph_feeds
    bgr, _ = as_batch(shapes_val[:1], (128, 160))
    model = decisive_model(
        osp.join(ROOT, 'configs', 'demo', 'lighthead_v2star_shapes.py'), bgr)
    assert isinstance(model.thin_map.norm, _BatchNorm)
    path = str(tmp_path / 'demo.onnx')
    export_onnx(model, path, (128, 160))
    assert isinstance(model.thin_map.norm, _BatchNorm)  # the model's kept
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert 'BatchNormalization' not in ops
    dets, _ = ort_session(path, threads=1).run(
        None, graph_feeds([b.numpy() for b in bgr], 0.0))
    with torch.no_grad():
        ref = model.test_step(mmdet_batch(bgr))[0].pred_instances
    n = min(20, len(ref.scores))
    assert n > 0
    torch.testing.assert_close(torch.from_numpy(dets[0, :n, 4]),
                               ref.scores[:n], rtol=1e-3, atol=1e-4)
