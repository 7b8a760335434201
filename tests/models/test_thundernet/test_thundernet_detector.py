"""The ThunderNet detector from each config: training losses, predictions
inside the image, the proposal counts, and the R-CNN's gradient reaching
the RPN through SAM."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import shufflenet_det  # noqa: F401
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CONFIGS = ['thundernet_snet49_coco', 'thundernet_snet146_coco',
           'thundernet_snet535_coco', 'thundernet_snet49_shapes']


def _build(name):
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'thundernet',
                                   name + '.py'))
    cfg.model.backbone.init_cfg = None  # no checkpoint in the tests
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model, cfg


def _batch(model, n=2, size=320, num_classes=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(torch.randint(0, 256, (3, size, size),
                                    dtype=torch.uint8, generator=g))
        xy = torch.rand(3, 2, generator=g) * (size - 100)
        wh = 24 + torch.rand(3, 2, generator=g) * 72
        sample = DetDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size),
            scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], 1),
            labels=torch.randint(0, num_classes, (3, ), generator=g))
        samples.append(sample)
    return model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), training=True)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_and_predicts(name):
    model, cfg = _build(name)
    num_classes = cfg.model.roi_head.bbox_head.num_classes
    assert type(model.backbone).__name__ == 'SNet'
    assert model.rpn_head.prior_generator.num_base_priors == [25]
    assert model.roi_head.bbox_roi_extractor.in_channels == 245  # 5 x 7 x 7
    assert model.roi_head.bbox_head.num_shared_fcs == 1
    assert cfg.model.test_cfg.rpn.max_per_img == 200

    data = _batch(model, num_classes=num_classes)
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'} <= \
        set(losses)
    # The RPN's losses are lists (one entry per level).
    values = [t for k, v in losses.items() if 'loss' in k
              for t in (v if isinstance(v, list) else [v])]
    assert all(torch.isfinite(t).all() for t in values)

    model.eval()
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    assert len(results) == 2 and all(isinstance(r, DetDataSample)
                                     for r in results)
    for r in results:
        boxes = r.pred_instances.bboxes
        assert boxes.shape[1] == 4 and len(boxes) <= 100
        assert (boxes >= 0).all() and (boxes <= 320).all()
        assert (r.pred_instances.labels < num_classes).all()


def test_proposals_at_test_are_200_per_image():
    model, _ = _build('thundernet_snet49_coco')
    data = _batch(model)
    model.eval()
    with torch.no_grad():
        cem = model.extract_feat(data['inputs'])
        cls, reg, sam = model.rpn_forward(cem)
        metas = [s.metainfo for s in data['data_samples']]
        proposals = model.rpn_head.predict_by_feat(
            cls, reg, batch_img_metas=metas, rescale=False)
    assert cem[0].shape == sam[0].shape == (2, 245, 20, 20)
    assert all(len(p) == 200 for p in proposals)
    # mode='tensor' (FLOP counting, tracing): the R-CNN's raw outputs
    with torch.no_grad():
        (outs, ) = model(data['inputs'], data['data_samples'], mode='tensor')
    assert outs[0].shape == (400, 81)  # 200 RoIs x 2 images, 80 + bg


def test_rcnn_loss_reaches_the_rpn_through_sam():
    """A loss on the R-CNN side only: its gradient reaches the RPN's convs
    (through SAM's theta and the RPN feature), but not the RPN's score and
    box convs, which only the RPN's losses see."""
    model, _ = _build('thundernet_snet49_coco')
    data = _batch(model)
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    rcnn = losses['loss_cls'] + losses['loss_bbox']
    rcnn.backward()
    rpn_pw = model.rpn_head.rpn_conv[1].conv.weight.grad
    rpn_dw = model.rpn_head.rpn_conv[0].conv.weight.grad
    assert rpn_pw is not None and rpn_pw.abs().sum() > 0
    assert rpn_dw is not None and rpn_dw.abs().sum() > 0
    assert model.sam.theta.conv.weight.grad.abs().sum() > 0
    assert model.rpn_head.rpn_cls.weight.grad is None
    assert model.rpn_head.rpn_reg.weight.grad is None
