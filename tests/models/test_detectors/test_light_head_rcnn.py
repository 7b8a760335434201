"""LightHeadRCNN: routing (RPN on C4, R-CNN on the thin map from C5),
shapes of loss/predict/_forward, channel inference, backbone swap, configs,
and a short training run."""
import copy
import importlib

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import shufflenet_det  # noqa: F401
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from shufflenet_det import table7

BASE = 'configs/_base_/models/lighthead_rcnn.py'
NUM_CLASSES = 3


def _model_cfg(**backbone):
    init_default_scope('mmdet')
    cfg = Config.fromfile(BASE).model
    # A 0.5x ShuffleNet V2 keeps the tests fast; from scratch.
    cfg.backbone.update(widen_factor=0.5, frozen_stages=-1, norm_eval=False)
    if backbone:
        cfg.backbone = backbone
    cfg.roi_head.bbox_head.num_classes = NUM_CLASSES
    return cfg


def _build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _batch(sizes=((128, 160), (96, 128)), seed=0):
    """Images with filled rectangles of three colours (= classes) on a dark
    noisy background, as the data loader yields them (uint8, CHW)."""
    g = torch.Generator().manual_seed(seed)
    colours = torch.tensor([[255, 40, 40], [40, 255, 40], [40, 40, 255]],
                           dtype=torch.uint8)
    inputs, samples = [], []
    for h, w in sizes:
        img = torch.randint(0, 60, (3, h, w), dtype=torch.uint8, generator=g)
        boxes, labels = [], []
        for k in range(3):
            bw, bh = torch.randint(24, 56, (2, ), generator=g).tolist()
            x1 = torch.randint(0, w - bw, (1, ), generator=g).item()
            y1 = torch.randint(0, h - bh, (1, ), generator=g).item()
            img[:, y1:y1 + bh, x1:x1 + bw] = colours[k].view(3, 1, 1)
            boxes.append([x1, y1, x1 + bw, y1 + bh])
            labels.append(k)
        sample = DetDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32),
            labels=torch.tensor(labels))
        inputs.append(img)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    # Tiny inputs gain nothing from more threads, and on a shared, loaded
    # CPU OpenMP's spinning threads make a training step ~30x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def model():
    return _build(_model_cfg())


def test_channels_inferred_from_the_backbone(model):
    # ShuffleNet V2 0.5x: C4 = stage3 (96 ch), C5 = conv5 (1024 ch).
    assert model.rpn_head.in_channels == 96
    assert model.thin_map.in_channels == 1024
    assert model.thin_map.out_channels == 490


def test_rpn_sees_only_c4_and_rcnn_only_the_thin_map(model):
    seen = {}

    def spy(name):
        def hook(module, args, out):
            seen[name] = (args[0], out)
        return hook

    hooks = [
        model.rpn_head.register_forward_hook(spy('rpn')),
        model.thin_map.register_forward_hook(spy('thin_map')),
        model.roi_head.bbox_roi_extractor.register_forward_hook(spy('roi')),
    ]
    model.eval()
    try:
        with torch.no_grad():
            data = model.data_preprocessor(_batch(), False)
            model.predict(data['inputs'], data['data_samples'])
    finally:
        for h in hooks:
            h.remove()
    h, w = data['inputs'].shape[-2:]  # padded to a multiple of 32
    rpn_feats = seen['rpn'][0]
    assert len(rpn_feats) == 1  # one feature map: C4
    assert rpn_feats[0].shape == (2, 96, h // 16, w // 16)
    c5, thin = seen['thin_map']
    assert c5.shape == (2, 1024, h // 32, w // 32)
    assert thin.shape == (2, 490, h // 32, w // 32)
    roi_feats, pooled = seen['roi']
    assert roi_feats[0] is thin
    assert len(roi_feats) == 1 and roi_feats[0].shape == (2, 490, h // 32,
                                                           w // 32)
    assert pooled.shape[1:] == (10, 7, 7)


def test_loss(model):
    model.train()
    data = model.data_preprocessor(_batch(), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox',
            'acc'} <= set(losses)
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    assert model.thin_map.branch_a[0].weight.grad is not None
    assert model.rpn_head.rpn_conv.weight.grad is not None


def test_predict_and_tensor_mode(model):
    model.eval()
    with torch.no_grad():
        results = model.test_step(_batch())
        data = model.data_preprocessor(_batch(), False)
        (cls_score, bbox_pred), = model._forward(data['inputs'],
                                                 data['data_samples'])
    assert len(results) == 2
    for r in results:
        pred = r.pred_instances
        assert pred.bboxes.shape[1] == 4 and len(pred.bboxes) <= 100
        assert len(pred.scores) == len(pred.labels) == len(pred.bboxes)
    # One row per proposal (at most 1000 per image at test time).
    assert cls_score.shape[1] == NUM_CLASSES + 1
    assert bbox_pred.shape == (cls_score.shape[0], 4 * NUM_CLASSES)


def test_channels_last_gives_the_same_losses_grads_and_features():
    """channels_last=True (the demo's speed option) only changes the memory
    layout: one training step's losses and gradients, and the features at
    inference, are those of the default layout."""
    plain = _build(_model_cfg())
    cl_cfg = _model_cfg()
    cl_cfg.channels_last = True
    fast = _build(cl_cfg)
    fast.load_state_dict(plain.state_dict())
    grads, all_losses = [], []
    # Noise breaks the ties of the flat rectangles in the stem's max-pool,
    # where either layout may route the gradient to another equal maximum.
    noise = torch.randn(2, 3, 128, 160, generator=torch.Generator()
                        .manual_seed(0))
    for m in (plain, fast):
        m.train()
        data = m.data_preprocessor(_batch(), True)
        data['inputs'] = data['inputs'] + 0.01 * noise
        seen = []
        hook = m.backbone.register_forward_pre_hook(
            lambda mod, args: seen.append(args[0]))
        torch.manual_seed(1)  # the RoI sampler draws at random
        losses = m.loss(data['inputs'], data['data_samples'])
        hook.remove()
        total, _ = m.parse_losses(losses)
        m.zero_grad()
        total.backward()
        all_losses.append({
            k: float((sum(v) if isinstance(v, list) else v).detach())
            for k, v in losses.items()})
        grads.append([p.grad.clone() for p in m.parameters()
                      if p.grad is not None])
        # The backbone gets the batch channels-last (NHWC) or as it was.
        assert seen[0].is_contiguous(memory_format=torch.channels_last) \
            == (m is fast)
    assert all_losses[0].keys() == all_losses[1].keys()
    for k in all_losses[0]:
        assert all_losses[1][k] == pytest.approx(all_losses[0][k], rel=1e-4,
                                                 abs=1e-5), k
    assert len(grads[0]) == len(grads[1]) > 100
    # fp32 rounding differs between the layouts' kernels and grows through
    # ~50 BN layers in training mode: gradients agree to ~1% (a wrong
    # channel order would give differences of order 1). Gradients that are
    # zero but for rounding (<1e-6) are left out.
    for g0, g1 in zip(*grads):
        if g0.norm() > 1e-6:
            assert (g1 - g0).norm() / g0.norm() < 0.03, tuple(g0.shape)
    # Inference: the same RPN input and thin map (the detections of an
    # untrained model are near-ties, whose order rounding may swap).
    feats = []
    for m in (plain, fast):
        m.eval()
        with torch.no_grad():
            data = m.data_preprocessor(_batch(), False)
            (c4, ), (thin, ) = m.extract_feat(data['inputs'])
        feats.append((c4, thin))
    for f0, f1 in zip(*feats):
        torch.testing.assert_close(f1, f0, rtol=1e-4, atol=1e-4)


def test_predict_under_fp16_autocast():
    """fp16 inference (tools/analysis/benchmark.py --fp16): the final NMS
    gets float32 boxes and scores (mmcv's NMS kernels take no others), here
    with every box above the score threshold so that NMS runs."""
    cfg = _model_cfg()
    cfg.test_cfg.rcnn.score_thr = 0.0
    model = _build(cfg).eval()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.float16):
        results = model.test_step(_batch())
    for r in results:
        assert len(r.pred_instances) == 100
        assert r.pred_instances.bboxes.dtype == torch.float32


def test_wrong_strides_rejected():
    # ResNet stages 2 and 3 are at strides 8 and 16, not 16 and 32.
    cfg = _model_cfg(type='ResNet', depth=18, out_indices=(1, 2))
    with pytest.raises(ValueError, match='strides'):
        MODELS.build(cfg)


def test_two_features_required():
    cfg = _model_cfg()
    cfg.backbone.out_indices = (1, 2, 3)
    with pytest.raises(ValueError, match='exactly two'):
        MODELS.build(cfg)


def _swap_cases():
    """(backbone, (C4, C5) channels, the optional package it comes from).
    The channels are the architectures' own: ResNet-18's stages 3 and 4,
    mmpretrain's 0.5x ShuffleNet V2 (stage 2, then conv5), and for each
    Table 7 cell the figures ``shufflenet_det.table7`` declares."""
    cases = [
        pytest.param(dict(type='ResNet', depth=18, out_indices=(2, 3),
                          norm_eval=False), (256, 512), None,
                     id='mmdet-ResNet-18'),
        pytest.param(dict(type='mmpretrain.ShuffleNetV2', widen_factor=0.5,
                          out_indices=(1, 3)), (96, 1024), 'mmpretrain',
                     id='mmpretrain-ShuffleNetV2-0.5x')]
    for family in table7.FAMILIES:
        cell = table7.cell(family, '40M')
        cases.append(pytest.param(
            dict(type='Table7Backbone', family=family, level='40M'),
            (cell['c4_channels'], cell['c5_channels']), None,
            id=f'Table7Backbone-{family}-40M'))
    return cases


@pytest.mark.parametrize('backbone,channels,package', _swap_cases())
def test_backbone_swap(backbone, channels, package):
    """Only the backbone dict changes; the heads adapt. Every backbone here
    is expected to be registered: a KeyError from the registry fails the
    test. Only a case from an optional package that is not installed is
    skipped."""
    if package is not None:
        pytest.importorskip(package)
        importlib.import_module(f'{package}.models')  # its registry
    cfg = _model_cfg()
    cfg.backbone = copy.deepcopy(backbone)
    model = _build(cfg).eval()
    assert (model.rpn_head.in_channels,
            model.thin_map.in_channels) == channels
    # The backbone's features themselves: those channels, at strides 16
    # and 32 (a 96 x 128 input).
    with torch.no_grad():
        c4, c5 = model.backbone(torch.zeros(1, 3, 96, 128))
    assert (c4.shape[1], c5.shape[1]) == channels
    assert (tuple(c4.shape[2:]), tuple(c5.shape[2:])) == ((6, 8), (3, 4))
    with torch.no_grad():
        results = model.test_step(_batch(sizes=((96, 128), )))
    assert results[0].pred_instances.bboxes.shape[1] == 4


@pytest.mark.parametrize('path,c4', [
    ('configs/lighthead_v2star.py', 232),  # C4 of V2* 1x (140M)
    ('configs/demo/lighthead_v2star_shapes.py', 96),  # V2* 0.5x (40M)
    ('configs/demo/lighthead_v2star_shapes_pretrained.py', 96)])
def test_configs_build(path, c4):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    assert 'shufflenet_det' in cfg.custom_imports.imports
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'LightHeadRCNN'
    assert type(model.backbone).__name__ == 'ShuffleNetV2Star'
    assert model.backbone.out_channels[1] == c4
    assert model.rpn_head.in_channels == c4
    assert model.thin_map.in_channels == 1024
    assert model.rpn_head.num_anchors == 15
    # The paper's thin map in the COCO configs; BN on it from scratch.
    assert (model.thin_map.norm is None) == (c4 == 232)


def test_demo_config_is_the_shapes_dataset():
    from shufflenet_det.datasets.shapes import CLASSES
    cfg = Config.fromfile('configs/demo/lighthead_v2star_shapes.py')
    assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == CLASSES
    assert tuple(cfg.val_dataloader.dataset.metainfo.classes) == CLASSES
    assert cfg.model.roi_head.bbox_head.num_classes == len(CLASSES)
    assert cfg.model.backbone.init_cfg is None  # from scratch


def test_short_training_lowers_the_loss():
    """A few dozen SGD steps on one synthetic batch (mmengine's
    OptimWrapper and the model's train_step)."""
    cfg = _model_cfg()
    # Fewer proposals than COCO's 12000 / 2000 keep the run short.
    cfg.train_cfg.rpn_proposal.update(nms_pre=2000, max_per_img=500)
    model = _build(cfg).train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01,
                                         momentum=0.9, weight_decay=1e-4),
                         clip_grad=dict(max_norm=35))
    batch = _batch()
    totals = []
    for _ in range(30):
        log_vars = model.train_step(batch, optim)
        totals.append(log_vars['loss'].item())
    first, last = sum(totals[:3]) / 3, sum(totals[-3:]) / 3
    assert last < 0.7 * first, totals
