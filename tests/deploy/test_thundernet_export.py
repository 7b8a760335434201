"""ThunderNet through the one-graph export: a seeded SNet49 ThunderNet
(the shapes config, its R-CNN NMS set to plain NMS), exported at 320x320
with --dynamic and run at 300x317 (not a multiple of 32: the graph pads to
320x320 as mmdet does), gives in ONNX Runtime (and OpenVINO f32) the
detections of ``ThunderNet.predict``, and the stages in between agree;
BatchNorm folding keeps its outputs; the config as shipped (soft-NMS) is
refused with the option that exports it.

The model is seeded as deploy_helpers.decisive_model seeds Light-Head
(which reads ``thin_map``, which ThunderNet has not): head weights
fan-in-scaled, BatchNorm statistics measured on the test images (here also
the RPN's and SAM's, so that folding them is not the identity), RPN logits
of standard deviation 1."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn as nn
from deploy_helpers import ROOT, as_batch, check_stages, table7_config
from torch.nn.modules.batchnorm import _BatchNorm

from shufflenet_det.apis.detector import build_detector
from shufflenet_det.deploy import (DeployError, LightHeadRCNNExport,
                                   count_batchnorm, export_onnx,
                                   fold_batchnorm, ort_session)
from shufflenet_det.deploy.export import check_graph, read_metadata
from shufflenet_det.deploy.parity import match_detections
from shufflenet_det.utils.inputs import mmdet_batch

pytest.importorskip('onnxruntime')

CONFIG = osp.join(ROOT, 'configs', 'thundernet', 'thundernet_snet49_shapes.py')
PLAIN_NMS = {'model.test_cfg.rcnn.nms.type': 'nms'}
EXPORT_SHAPE = (320, 320)
SHAPE = (300, 317)


def config(**options):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.init_cfg = None  # no checkpoint in the tests
    cfg.merge_from_dict(options)
    init_default_scope('mmdet')
    return cfg


def seeded_thundernet(bgr, seed=0):
    """The shapes ThunderNet with plain NMS, seeded (module docstring)."""
    model = build_detector(config(**PLAIN_NMS), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    inputs = model.data_preprocessor(mmdet_batch(bgr), False)['inputs']
    with torch.no_grad():
        for head in (model.neck, model.rpn_head, model.sam, model.roi_head):
            for m in head.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    fan_in = m.weight[0].numel()
                    m.weight.normal_(0, (2 / fan_in)**0.5, generator=gen)
        # Deltas of ~0.1: boxes near their anchors.
        model.rpn_head.rpn_reg.weight.mul_(0.1)
        bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # a plain average over the batches seen
            bn.train()
        model.rpn_forward(model.extract_feat(inputs))
        model.eval()
        logits = model.rpn_forward(model.extract_feat(inputs))[0][0]
        model.rpn_head.rpn_cls.weight.div_(logits.std())
    return model


@pytest.fixture(scope='module')
def exported(tmp_path_factory, shapes_val):
    """Images at SHAPE (mmdet's and the graph's layouts), the seeded model
    and its --dynamic debug graph traced at 320x320."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny inputs; the machine may be shared
    bgr, rgb = as_batch(shapes_val[:2], SHAPE)
    model = seeded_thundernet(bgr)
    path = str(tmp_path_factory.mktemp('thundernet') / 'thundernet.onnx')
    export_onnx(model, path, EXPORT_SHAPE, dynamic=True, debug=True,
                classes=config().test_dataloader.dataset.metainfo.classes)
    yield bgr, rgb, model, path
    torch.set_num_threads(threads)


def test_onnxruntime_matches_pytorch(exported):
    import onnx
    bgr, rgb, model, path = exported
    assert 'BatchNormalization' not in {
        n.op_type for n in onnx.load(path).graph.node}
    dets, labels, props, valid, cls_score, bbox_pred = ort_session(
        path, threads=1).run(None, {'input': rgb.numpy()})
    k = model.test_cfg.rcnn.max_per_img
    assert dets.shape == (2, k, 5) and labels.shape == (2, k)
    h, w = SHAPE  # clipped to the image, none in the padding
    assert (dets[..., :4] >= 0).all() and (props >= 0).all()
    assert (dets[..., 0:4:2] <= w).all() and (dets[..., 1:4:2] <= h).all()
    assert (props[..., 0::2] <= w).all() and (props[..., 1::2] <= h).all()

    # 1. The proposals: mmdet's RPN on the CEM map, its own NMS; 2. the
    # R-CNN's raw outputs on them, pooled from the SAM map; 3. the
    # detections, at test_parity.py's tolerances.
    with torch.no_grad():
        data = model.data_preprocessor(mmdet_batch(bgr), False)
        cem = model.extract_feat(data['inputs'])
        scores, deltas, sam = model.rpn_forward(cem)
        ref = model.rpn_head.predict_by_feat(
            scores, deltas, batch_img_metas=[
                s.metainfo for s in data['data_samples']], rescale=False)
    check_stages(model, bgr, (dets, labels, props, valid, cls_score,
                              bbox_pred), ref, sam, count_tol=0,
                 min_reference=20)

    # Padded by the caller (with noise) to 320x320, the sizes given: the
    # graph ignores the padding.
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, *EXPORT_SHAPE))
    x = x.astype(np.float32)
    x[:, :, :h, :w] = rgb.numpy()
    padded = ort_session(path, threads=1).run(None, {
        'input': x, 'img_shape': np.array([SHAPE], np.int64)})
    np.testing.assert_allclose(padded[0], dets, atol=1e-3)
    np.testing.assert_array_equal(padded[1], labels)


def test_openvino_f32_matches_onnxruntime(exported):
    pytest.importorskip('openvino')
    from shufflenet_det.deploy.openvino import ov_compile
    _, rgb, _, path = exported
    feeds = {'input': rgb.numpy()}
    dets, labels = ov_compile(path, threads=1).run(None, feeds)[:2]
    ref = ort_session(path, threads=1).run(None, feeds)[:2]
    report = match_detections(*ref, dets, labels, iou_thr=0.99,
                              score_tol=1e-3)
    assert report['reference'] > 20
    assert report['other'] == report['reference'], report
    assert report['matched'] >= 0.98 * report['reference'], report


def test_metadata_and_configs(exported):
    """The graph says what it computes with: ThunderNet, plain NMS. The
    config with the export's option is accepted; as shipped (soft-NMS) and
    a Light-Head config are refused."""
    path = exported[3]
    meta = read_metadata(path)
    assert meta['detector'] == 'ThunderNet'
    assert meta['test_cfg']['rcnn']['nms'] == dict(type='nms',
                                                   iou_threshold=0.5)
    assert check_graph(config(**PLAIN_NMS), path) == meta
    with pytest.raises(DeployError, match=r'model.test_cfg.rcnn.nms.type = '
                       r'"nms", the config has "soft_nms"'):
        check_graph(config(), path)
    from mmengine.config import Config
    lighthead = Config.fromfile(table7_config('shufflenetv2', '40m'))
    lighthead.merge_from_dict({'model.roi_head.bbox_head.num_classes': 5})
    with pytest.raises(DeployError, match=r'exported with model.type = '
                       r'"ThunderNet", the config has "LightHeadRCNN"'):
        check_graph(lighthead, path)


def test_soft_nms_and_other_detectors_refused(exported):
    model = exported[2]
    shipped = copy.copy(model)  # the same modules, the config's test_cfg
    shipped.test_cfg = config().model.test_cfg
    assert shipped.test_cfg.rcnn.nms.type == 'soft_nms'
    with pytest.raises(DeployError, match=r'ONNX has no soft-NMS .*'
                       r'--cfg-options model.test_cfg.rcnn.nms.type=nms'):
        LightHeadRCNNExport(shipped)
    with pytest.raises(DeployError, match='export supports LightHeadRCNN '
                       'and ThunderNet, got SNet'):
        LightHeadRCNNExport(model.backbone)


def test_fold_batchnorm_keeps_the_outputs(exported):
    """Every BatchNorm folds (backbone, the RPN's two ConvModules, SAM's
    theta; the CEM has none) and the maps and detections are unchanged."""
    bgr, _, model, _ = exported
    model = copy.deepcopy(model)
    assert isinstance(model.sam.theta.norm, _BatchNorm)
    data = model.data_preprocessor(mmdet_batch(bgr), False)
    with torch.no_grad():
        ref = model.rpn_forward(model.extract_feat(data['inputs']))
        before = model.test_step(mmdet_batch(bgr))[0].pred_instances
        assert fold_batchnorm(model) > 0 and count_batchnorm(model) == 0
        out = model.rpn_forward(model.extract_feat(data['inputs']))
        after = model.test_step(mmdet_batch(bgr))[0].pred_instances
    for a, b in zip(ref, out):  # scores, deltas, SAM map
        a, b = a[0], b[0]
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-3 * a.abs().max())
    assert len(before) > 20
    torch.testing.assert_close(after.scores[:20], before.scores[:20],
                               rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(after.bboxes[:20], before.bboxes[:20],
                               rtol=1e-3, atol=1e-2)
