"""Shared by the deployment tests (conftest.py has the fixtures): images in
both layouts, and a seeded model whose scores are decisive enough for a
parity test to mean something.

A model straight from its initialisation is a poor reference: BatchNorm's
initial statistics (mean 0, variance 1) leave the eval-mode activations
vanishing (C5 ~ 1e-5), so that every RPN score is ~0.5 and every class
score ~1 / (classes + 1), and near-ties decide which boxes win. So the
backbone's BatchNorm statistics are measured on the test images (as a BN
recalibration would) and the heads' layers get fan-in-scaled weights,
drawn with a seed (the RPN's classifier scaled to logits of standard
deviation 1): activations of order 1, RPN logits and class logits with a
spread of order 1, and detections that do not hinge on the sixth
decimal. No training is needed.
"""
import os.path as osp

import numpy as np
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from shufflenet_det.apis.detector import build_detector
from shufflenet_det.deploy.parity import box_iou, match_detections
from shufflenet_det.utils.inputs import mmdet_batch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def mmdet_detections(model, bgr, k):
    """mmdet's predictions as the export's padded (N, K, 5), (N, K)."""
    with torch.no_grad():
        results = model.test_step(mmdet_batch(bgr))
    dets = np.zeros((len(bgr), k, 5), np.float32)
    labels = np.full((len(bgr), k), -1, np.int64)
    for i, res in enumerate(results):
        pred = res.pred_instances
        n = len(pred)
        dets[i, :n, :4] = pred.bboxes.numpy()
        dets[i, :n, 4] = pred.scores.numpy()
        labels[i, :n] = pred.labels.numpy()
    return dets, labels


def check_stages(model, bgr, outputs, ref_proposals, rcnn_feats,
                 count_tol=1, min_reference=0):
    """A debug graph's ``outputs`` (dets, labels, proposals, their
    validity, the R-CNN's raw class scores and box deltas) against mmdet's
    stages on the same images ``bgr``: 1. the proposals against
    ``ref_proposals`` (mmdet's RPN with its own NMS), 2. the R-CNN's raw
    outputs on the graph's proposals, pooled by mmdet from ``rcnn_feats``,
    3. the detections against ``model.predict`` (IoU >= 0.99, same label,
    scores within 1e-3; at least ``min_reference`` of them, the counts
    within ``count_tol``). Returns the detections' match report."""
    from mmdet.structures.bbox import bbox2roi
    dets, labels, props, valid, cls_score, bbox_pred = outputs
    n = len(bgr)
    for i in range(n):
        theirs, ours = ref_proposals[i].bboxes.numpy(), props[i][valid[i]]
        assert abs(len(ours) - len(theirs)) <= 2
        # The same boxes but one or two: an IoU at the NMS threshold (0.7)
        # within float rounding goes either way, and the box kept or not
        # can suppress another later on.
        assert (box_iou(theirs, ours).max(1) >= 0.99).mean() >= 0.99
        assert (box_iou(ours, theirs).max(1) >= 0.99).mean() >= 0.99
        # The best in the same order.
        assert (np.diag(box_iou(ours[:20], theirs[:20])) >= 0.99).all()

    # PSRoIAlign in PyTorch, RoiAlign per bin in the graph.
    rois = bbox2roi([torch.from_numpy(props[i][valid[i]]) for i in range(n)])
    with torch.no_grad():
        out = model.roi_head._bbox_forward(rcnn_feats, rois)
    flat = valid.reshape(-1)
    np.testing.assert_allclose(cls_score[flat], out['cls_score'].numpy(),
                               rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(bbox_pred[flat], out['bbox_pred'].numpy(),
                               rtol=1e-3, atol=1e-3)

    ref_dets, ref_labels = mmdet_detections(
        model, bgr, model.test_cfg.rcnn.max_per_img)
    report = match_detections(ref_dets, ref_labels, dets, labels,
                              iou_thr=0.99, score_tol=1e-3)
    assert report['reference'] > min_reference
    assert abs(report['other'] - report['reference']) <= count_tol, report
    assert report['matched'] >= 0.98 * report['reference'], report
    return report


def table7_config(family, level):
    return osp.join(ROOT, 'configs', 'table7',
                    f'lighthead_{family}_{level}.py')


def as_batch(images, shape):
    """Images (BGR HWC uint8) resized to ``shape`` (H, W): the mmdet batch
    (BGR CHW uint8, as the data loader yields) and the export's input (RGB
    float32 0-255, (N, 3, H, W))."""
    import mmcv
    h, w = shape
    bgr = [torch.from_numpy(mmcv.imresize(im, (w, h))).permute(2, 0, 1)
           .contiguous() for im in images]
    rgb = torch.stack([im.flip(0) for im in bgr]).float()
    return bgr, rgb


def decisive_model(config, bgr, seed=0, cfg_options=None):
    """``config``'s detector (eval mode), with the backbone's BatchNorm
    statistics measured on ``bgr`` and the heads re-drawn with ``seed``
    (module docstring)."""
    model = build_detector(config, cfg_options=cfg_options, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bns = [m for m in model.backbone.modules()
               if isinstance(m, _BatchNorm)]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # a plain average over the batches seen
            bn.train()
        model.backbone(model.data_preprocessor(mmdet_batch(bgr),
                                               False)['inputs'])
        model.eval()
        for head in (model.thin_map, model.rpn_head, model.roi_head):
            for m in head.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    fan_in = m.weight[0].numel()
                    m.weight.normal_(0, (2 / fan_in)**0.5, generator=gen)
        # Deltas of ~0.1: boxes near their anchors (with deltas of ~1 some
        # become slivers, whose IoU float rounding alone changes).
        model.rpn_head.rpn_reg.weight.mul_(0.1)
        # RPN logits of standard deviation 1: no sigmoid saturated to 1.0
        # (ties that either side may order its own way).
        c4 = model.backbone(model.data_preprocessor(mmdet_batch(bgr),
                                                    False)['inputs'])[0]
        logits = model.rpn_head((c4, ))[0][0]
        model.rpn_head.rpn_cls.weight.div_(logits.std())
    return model


def shapes_config(path, shapes_root, base, shape=(288, 384)):
    """Write a config at ``path``: the Table 7 cell ``base`` on the tiny
    shapes set (five classes), its test images resized to ``shape`` (H, W)
    without keeping their aspect ratio. Returns ``path`` as a str."""
    data_root = f'{shapes_root}/'
    h, w = shape
    path.write_text(f'''
_base_ = [{base!r}]
data_root = {data_root!r}
metainfo = dict(classes=('circle', 'rectangle', 'triangle', 'star', 'cross'))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=({w}, {h}), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor'))
]
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), pipeline=pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
model = dict(roi_head=dict(bbox_head=dict(num_classes=5)))
''')
    return str(path)


def exported_shapes_graph(tmp, shapes_root, shapes_val, base, shape):
    """A shapes config from ``base`` at ``shape``, its seeded detector
    (:func:`decisive_model`) and that detector's --dynamic graph with the
    config's class names in its metadata: (config, model, onnx path)."""
    from mmengine.config import Config

    from shufflenet_det.deploy import export_onnx
    from shufflenet_det.deploy.export import config_classes
    config = shapes_config(tmp / 'shapes.py', shapes_root, base, shape)
    bgr, _ = as_batch(shapes_val, shape)
    model = decisive_model(str(config), bgr)
    onnx = str(tmp / 'model.onnx')
    with torch.no_grad():
        export_onnx(model, onnx, shape, dynamic=True,
                    classes=config_classes(Config.fromfile(config)))
    return config, model, onnx
