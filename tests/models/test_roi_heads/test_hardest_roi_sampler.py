"""HardestRoISampler: Light-Head R-CNN's OHEM (256 hardest RoIs per image,
foreground and background ranked together by classification + box loss)."""
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import shufflenet_det  # noqa: F401
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

BASE = 'configs/_base_/models/lighthead_rcnn.py'


def _roi_head(num_classes=3):
    init_default_scope('mmdet')
    model = Config.fromfile(BASE).model
    cfg = model.roi_head
    cfg.bbox_head.num_classes = num_classes
    cfg.update(train_cfg=model.train_cfg.rcnn, test_cfg=model.test_cfg.rcnn)
    torch.manual_seed(0)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def _image(num_proposals, seed=0):
    """Proposals around 3 GT boxes (so there are fg and bg RoIs) in a
    256 x 320 image, and its thin map (stride 32)."""
    g = torch.Generator().manual_seed(seed)
    gt = InstanceData(
        bboxes=torch.tensor([[20., 30., 120., 150.], [150., 40., 300., 110.],
                             [60., 160., 140., 240.]]),
        labels=torch.tensor([0, 2, 1]))
    xy = torch.rand(num_proposals, 2, generator=g) * torch.tensor([250., 200])
    wh = 16 + torch.rand(num_proposals, 2, generator=g) * 120
    proposals = InstanceData(priors=torch.cat([xy, xy + wh], 1),
                             scores=torch.rand(num_proposals, generator=g))
    feats = [torch.randn(1, 490, 8, 10, generator=g)]
    return proposals, gt, feats


def _sample(head, num_proposals):
    proposals, gt, feats = _image(num_proposals)
    assign = head.bbox_assigner.assign(proposals, gt)
    return head.bbox_sampler.sample(assign, proposals, gt, feats=feats)


def test_keeps_256_rois_per_image():
    head = _roi_head()
    result = _sample(head, 1000)
    assert len(result.pos_inds) + len(result.neg_inds) == 256
    assert len(result.pos_inds) > 0 and len(result.neg_inds) > 0
    # No positive quota: fg and bg counts come from the ranking alone.
    assert set(result.pos_inds.tolist()).isdisjoint(result.neg_inds.tolist())


def test_fewer_candidates_than_num_are_all_kept():
    head = _roi_head()
    result = _sample(head, 100)
    assert len(result.pos_inds) + len(result.neg_inds) == 100 + 3  # + GT


def test_keeps_the_hardest_by_cls_plus_box_loss():
    """Recompute the official ranking (softmax CE + smooth L1 of the
    foreground RoIs' class-specific deltas, beta 1, no loss weights) by hand;
    the kept RoIs must be its top 256."""
    head = _roi_head()
    proposals, gt, feats = _image(1000)
    assign = head.bbox_assigner.assign(proposals, gt)
    result = head.bbox_sampler.sample(assign, proposals, gt, feats=feats)

    priors = torch.cat([gt.bboxes, proposals.priors])  # GT added first
    gt_inds = assign.gt_inds  # after add_gt_: aligned with priors
    labels = torch.where(gt_inds > 0, assign.labels, 3)
    with torch.no_grad():
        rois = torch.cat([priors.new_zeros(len(priors), 1), priors], 1)
        out = head._bbox_forward(feats, rois)
        loss = F.cross_entropy(out['cls_score'], labels, reduction='none')
        pos = (gt_inds > 0).nonzero().squeeze(1)
        deltas = out['bbox_pred'].view(len(priors), -1, 4)[pos, labels[pos]]
        targets = head.bbox_head.bbox_coder.encode(
            priors[pos], gt.bboxes[gt_inds[pos] - 1])
        loss[pos] += F.smooth_l1_loss(deltas, targets, beta=1.0,
                                      reduction='none').sum(1)
    expected = set(loss.topk(256).indices.tolist())
    kept = set(result.pos_inds.tolist()) | set(result.neg_inds.tolist())
    assert kept == expected


def test_roi_head_loss_with_ohem():
    head = _roi_head()
    proposals, gt, feats = _image(600)
    sample = DetDataSample(metainfo=dict(img_shape=(256, 320)))
    sample.gt_instances = gt
    proposals.bboxes = proposals.pop('priors')
    losses = head.loss(tuple(feats), [proposals], [sample])
    assert {'loss_cls', 'loss_bbox', 'acc'} <= set(losses)
    assert torch.isfinite(losses['loss_cls']) and losses['loss_bbox'] > 0


def test_settings_it_does_not_use_are_refused():
    """An OHEMSampler config copied over keeps pos_fraction, neg_pos_ub,
    loss_key: refused with the keys and why, not silently dropped."""
    import pytest
    init_default_scope('mmdet')
    model = Config.fromfile(BASE).model
    cfg = model.roi_head
    cfg.update(train_cfg=model.train_cfg.rcnn, test_cfg=model.test_cfg.rcnn)
    cfg.train_cfg.sampler.update(pos_fraction=0.25, loss_key='loss_cls')
    with pytest.raises(TypeError) as info:
        MODELS.build(cfg)
    msg = str(info.value)
    assert "['loss_key', 'pos_fraction']" in msg
    assert 'ranked together' in msg and 'train_cfg.rcnn.sampler' in msg
