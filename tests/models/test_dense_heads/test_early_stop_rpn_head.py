import pytest
import torch
from mmcv.ops import batched_nms, nms
from mmengine.config import ConfigDict
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

import shufflenet_det  # noqa: F401
from shufflenet_det.models.dense_heads import nms_first_k


def random_boxes(n, spread, seed):
    gen = torch.Generator().manual_seed(seed)
    ctr = torch.rand(n, 2, generator=gen) * torch.tensor([1200., 800.])
    wh = torch.rand(n, 2, generator=gen) * spread + 4
    boxes = torch.cat([ctr - wh / 2, ctr + wh / 2], 1)
    # distinct scores: with ties, the order of equal scores is the sort's
    scores = torch.randperm(n, generator=gen).float() / n
    return boxes, scores


@pytest.mark.parametrize('n,max_num,block', [
    (6000, 1000, 512), (2000, 300, 7), (500, 1000, 64), (1, 5, 512),
    (3000, 0, 256)])
@pytest.mark.parametrize('spread', [20, 300])
def test_nms_first_k_equals_mmcv_nms(n, max_num, block, spread):
    boxes, scores = random_boxes(n, spread, seed=n + spread)
    ref = nms(boxes, scores, 0.7)[1]
    if max_num > 0:
        ref = ref[:max_num]
    ours = nms_first_k(boxes, scores, 0.7, max_num, block_size=block)
    assert ours.dtype == torch.int64
    assert torch.equal(ours, ref)


def test_nms_first_k_empty():
    assert nms_first_k(torch.zeros(0, 4), torch.zeros(0), 0.5, 10).numel() == 0


def rpn_cfg(type_, strides, nms_cfg):
    return ConfigDict(
        type=type_, in_channels=8, feat_channels=8, num_classes=1,
        anchor_generator=dict(type='AnchorGenerator', scales=[2, 4, 8],
                              ratios=[0.5, 1.0, 2.0], strides=strides),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                        target_means=[0.] * 4, target_stds=[1.] * 4),
        test_cfg=dict(nms_pre=600, max_per_img=150, nms=nms_cfg,
                      min_bbox_size=0))


@pytest.mark.parametrize('strides', [[16], [8, 16]])
@pytest.mark.parametrize('nms_cfg', [
    dict(type='nms', iou_threshold=0.7),
    dict(type='soft_nms', iou_threshold=0.7, min_score=0.05)])
def test_same_proposals_as_mmdet_rpn_head(strides, nms_cfg):
    torch.manual_seed(0)
    ref = MODELS.build(rpn_cfg('RPNHead', strides, nms_cfg)).eval()
    ours = MODELS.build(rpn_cfg('EarlyStopRPNHead', strides, nms_cfg)).eval()
    ours.load_state_dict(ref.state_dict())
    h, w = 256, 384
    feats = tuple(torch.randn(2, 8, h // s, w // s) for s in strides)
    samples = []
    for _ in range(2):
        s = DetDataSample()
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                            scale_factor=(1., 1.)))
        samples.append(s)
    with torch.no_grad():
        expected = ref.predict(feats, samples, rescale=False)
        got = ours.predict(feats, samples, rescale=False)
    for e, g in zip(expected, got):
        assert len(g) == len(e) <= 150
        torch.testing.assert_close(g.bboxes, e.bboxes)
        torch.testing.assert_close(g.scores, e.scores)
        assert torch.equal(g.labels, e.labels)
        assert 'level_ids' not in g


def test_levels_do_not_suppress_each_other():
    # the same box on two levels: both kept, as with mmcv's batched_nms
    boxes = torch.tensor([[10., 10., 50., 50.]] * 2)
    scores = torch.tensor([0.9, 0.8])
    levels = torch.tensor([0, 1])
    ref = batched_nms(boxes, scores, levels,
                      dict(type='nms', iou_threshold=0.5))[1]
    assert ref.tolist() == [0, 1]
    head = MODELS.build(rpn_cfg('EarlyStopRPNHead', [8, 16],
                                dict(type='nms', iou_threshold=0.5)))
    from mmengine.structures import InstanceData
    results = InstanceData(bboxes=boxes, scores=scores, level_ids=levels)
    out = head._bbox_post_process(results, head.test_cfg)
    assert out.scores.tolist() == pytest.approx([0.9, 0.8])
