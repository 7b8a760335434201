"""The 20 Table 7 cells train as the official Light-Head R-CNN does
(zengarden/light_head_rcnn, the COCO ps_roialign experiment's config.py and
tools/train.py): read from the configs and from the optimizer and
schedulers that mmengine builds from them, against the official rules
written out here."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS

from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from shufflenet_det import table7

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
register_all_modules()

BASE_LR, WD = 0.01, 1e-4


def _cell_cfg(family, level):
    return Config.fromfile(
        f'{ROOT}/configs/table7/lighthead_{family}_{level.lower()}.py')


def official_lr(it):
    """config.py + tools/train.py: 500 warm-up iterations from lr / 3
    before epoch 0, then 30 epochs of 80,000 / 16 iterations, lr x1 until
    epoch 19, x0.1 until 25, x0.01 until 30."""
    if it < 500:
        return BASE_LR / 3 + it * (BASE_LR - BASE_LR / 3) / 500
    epoch = (it - 500) // 5000
    return BASE_LR * (1 if epoch < 19 else 0.1 if epoch < 25 else 0.01)


#: The official values, as the source files state them.
OFFICIAL = dict(
    # network_desp.py: psalign_pool(group_size=7, sample_height=2, ...),
    # the "ps align max pooling" kernel
    pool=('max', 2, 7),
    # config.py: test_cls_threshold = 0.00, test_nms = 0.5,
    # test_max_boxes_per_image = 100
    test=(0.0, 0.5, 100),
    # config.py: max_epoch = 30, nr_image_per_epoch = 80000, warm_iter =
    # 500; train_batch_per_gpu = 2 on 8 GPUs
    iters=500 + 30 * 80000 // 16, images_per_iter=(2, 16),
    # tools/train.py: MomentumOptimizer(lr, 0.9), l2 1e-4; no clipping
    optimizer=dict(type='SGD', lr=BASE_LR, momentum=0.9, weight_decay=WD),
)


@pytest.mark.parametrize('family,level', table7.cells())
def test_every_cell_has_the_official_settings(family, level):
    cfg = _cell_cfg(family, level)
    model = cfg.model
    ext = model.roi_head.bbox_roi_extractor
    assert (ext.pool_mode, ext.sampling_ratio, ext.output_size) == \
        OFFICIAL['pool']
    assert model.train_cfg.rpn.allowed_border == 0
    rcnn = model.test_cfg.rcnn
    assert (rcnn.score_thr, rcnn.nms.iou_threshold, rcnn.max_per_img) == \
        OFFICIAL['test']
    assert cfg.train_cfg.max_iters == OFFICIAL['iters']
    per_gpu, total = OFFICIAL['images_per_iter']
    assert cfg.train_dataloader.batch_size == per_gpu
    assert cfg.auto_scale_lr.base_batch_size == total
    optim = cfg.optim_wrapper
    assert optim.get('clip_grad') is None
    assert optim.optimizer == OFFICIAL['optimizer']


# No optimizer step is taken: only the lr the schedulers set is read.
@pytest.mark.filterwarnings('ignore:Detected call of `scheduler.step')
def test_schedule_is_the_official_lr_at_every_iteration():
    cfg = _cell_cfg('shufflenetv2', '40M')
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=BASE_LR)
    schedulers = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=optimizer))
        for s in copy.deepcopy(cfg.param_scheduler)
    ]
    last = cfg.train_cfg.max_iters
    for it in range(last):
        lr = optimizer.param_groups[0]['lr']
        assert lr == pytest.approx(official_lr(it), rel=1e-9), it
        # The step before the next iteration (ParamSchedulerHook's order).
        for s in schedulers:
            s.step()
    assert official_lr(last - 1) == pytest.approx(BASE_LR * 0.01)


def official_inds_inside(anchors, im_h, im_w):
    """lib/detection_opr/rpn_batched/anchor_target_layer_without_boxweight.py:
    anchors are labelled only when they lie inside the image
    (``_allowed_border = 0``)."""
    allowed_border = 0
    return ((anchors[:, 0] >= -allowed_border)
            & (anchors[:, 1] >= -allowed_border)
            & (anchors[:, 2] < im_w + allowed_border)
            & (anchors[:, 3] < im_h + allowed_border))


def test_rpn_labels_the_anchors_the_official_code_labels():
    """The cell's allowed_border through mmdet's own rule
    (``anchor_inside_flags``, what AnchorHead's targets use) keeps exactly
    the anchors the official anchor target layer keeps."""
    from mmdet.models.task_modules.prior_generators import \
        anchor_inside_flags
    cfg = _cell_cfg('shufflenetv2', '140M')
    head_cfg = copy.deepcopy(cfg.model.rpn_head)
    head_cfg.update(in_channels=232, train_cfg=cfg.model.train_cfg.rpn)
    head = MODELS.build(head_cfg)
    im_h, im_w = 800, 1184  # an 800 x 1184 image, padded to 800 x 1216
    anchors = head.prior_generator.grid_priors([(50, 76)], device='cpu')[0]
    valid = torch.ones(len(anchors), dtype=torch.bool)
    ours = anchor_inside_flags(anchors, valid, (im_h, im_w),
                               head.train_cfg['allowed_border'])
    official = official_inds_inside(anchors, im_h, im_w)
    assert torch.equal(ours, official)
    assert 0 < official.sum() < len(anchors)  # some cross the border


def _groups_by_name(model, optim_wrapper):
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for group in optim_wrapper.optimizer.param_groups:
        for p in group['params']:
            out[names[id(p)]] = (group['lr'], group['weight_decay'])
    return out


@pytest.fixture(scope='module')
def cell_and_groups():
    cfg = _cell_cfg('shufflenetv2star', '40M')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    return model, optim_wrapper, _groups_by_name(model, optim_wrapper)


def test_thin_map_trains_at_3x_and_biases_without_decay(cell_and_groups):
    model, _, groups = cell_and_groups
    thin = [n for n, _ in model.named_parameters() if n.startswith(
        'thin_map.')]
    assert len(thin) == 8  # 4 convolutions, weight and bias
    for name, (lr, wd) in groups.items():
        bias = name.endswith('.bias')
        if name.startswith('thin_map.'):
            assert (lr, wd) == (3 * BASE_LR, 0.0 if bias else WD), name
        else:
            assert (lr, wd) == (BASE_LR, 0.0 if bias else WD), name
    # BN frozen and the stem + first stage frozen: not in the optimizer.
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and not frozen & set(groups)
    assert any('.bn.' in n or 'norm' in n or '.1.weight' in n
               for n in frozen)
    assert {n for n in groups if n.startswith('roi_head.')} and \
        {n for n in groups if n.startswith('rpn_head.')}


def test_updates_equal_the_official_gradient_multiplier(cell_and_groups):
    """Three SGD steps with momentum from the built optimizer against the
    official rule: gradient (weight decay on weights included) x3 for
    conv_new*, MomentumOptimizer (accum = 0.9 accum + g; w -= lr accum)."""
    model, optim_wrapper, _ = cell_and_groups
    names = ('thin_map.branch_a.0.weight', 'thin_map.branch_b.1.bias',
             'rpn_head.rpn_conv.bias', 'roi_head.bbox_head.fc_cls.weight')
    params = dict(model.named_parameters())
    start = {n: params[n].detach().clone() for n in names}
    official = {n: start[n].clone() for n in names}
    accum = {n: torch.zeros_like(start[n]) for n in names}
    optimizer = optim_wrapper.optimizer
    optimizer.zero_grad()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for step in range(3):
            grads = {n: torch.randn(start[n].shape, generator=gen)
                     for n in names}
            for n, p in model.named_parameters():
                p.grad = grads[n].clone() if n in names else None
            optimizer.step()
            for n in names:
                g = grads[n] + (0 if n.endswith('.bias') else
                                WD * official[n])
                if n.startswith('thin_map.'):
                    g = g * 3
                accum[n] = 0.9 * accum[n] + g
                official[n] = official[n] - BASE_LR * accum[n]
        for n in names:
            torch.testing.assert_close(params[n].detach(), official[n],
                                       rtol=1e-5, atol=1e-7)
            params[n].copy_(start[n])
    optimizer.state.clear()
