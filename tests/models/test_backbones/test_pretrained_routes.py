"""Every pretrained route of checkpoints/README.md, input included.

For each source of ImageNet weights a checkpoint is written in that source's
own key layout and shapes (random weights, BatchNorm statistics that are not
the identity) and loaded through the Table 7 cell's own config. From the
image as the config loads it (its test pipeline), through the config's
``data_preprocessor``, the backbone's C4 and C5 must equal what the source's
own network computes on the same pixels preprocessed the way the source
trained its weights (read from the source: torchvision's weight transforms,
mmpretrain's configs, megvii's ``ToBGRTensor``). A weight fed another input
than it was trained on is a silent defect (the run trains, the mAP is just
lower); LightHeadRCNN refuses such a config, and that is tested too.
"""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope
from PIL import Image
from torch.nn.modules.batchnorm import _BatchNorm

import shufflenet_det  # noqa: F401
from megvii_reference import official_forward, official_state, to_bgr_tensor
from mmdet.registry import MODELS
from shufflenet_det import table7
from shufflenet_det.models.backbones.pretrained import (IMAGENET_RGB,
                                                       InputMismatchError,
                                                       convert_checkpoint)
from shufflenet_det.models.backbones.converters import \
    SHUFFLENET_V1_CONVERTERS

torchvision = pytest.importorskip('torchvision')
mmpretrain = pytest.importorskip('mmpretrain')
from torchvision.transforms import functional as TF  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
MMPRETRAIN_CONFIGS = osp.join(osp.dirname(mmpretrain.__file__), '.mim',
                              'configs')
#: torchvision's ShuffleNet V2 builders and weights, per Table 7 level
TV_SHUFFLENET = {
    '40M': ('shufflenet_v2_x0_5', 'ShuffleNet_V2_X0_5_Weights'),
    '140M': ('shufflenet_v2_x1_0', 'ShuffleNet_V2_X1_0_Weights'),
    '300M': ('shufflenet_v2_x1_5', 'ShuffleNet_V2_X1_5_Weights'),
    '500M': ('shufflenet_v2_x2_0', 'ShuffleNet_V2_X2_0_Weights'),
}
#: the cells whose weights come from the project's own pretraining
OWN = [(f, lv) for f in ('shufflenetv2star', 'xception') for lv in
       table7.LEVELS] + [('mobilenetv2', lv) for lv in ('40M', '140M',
                                                       '500M')]


# ------------------------------------------------------------------ helpers
def randomize_bn(model, seed=0):
    """BatchNorm statistics and affine parameters far from the identity, so
    that a wrong mean/std or channel order cannot cancel out."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.1)
    return model


@pytest.fixture(scope='module')
def image_path(tmp_path_factory):
    """A 300 x 444 PNG with colour structure (different in each channel):
    the cells' Resize (short side 800, long side <= 1200) takes it to
    800 x 1184, multiples of 32, so no padding enters the comparison."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:300, 0:444]
    img = np.stack([
        128 + 100 * np.sin(xx / 23.0), 128 + 100 * np.cos(yy / 17.0),
        np.clip(rng.normal(100, 60, (300, 444)), 0, 255)], -1)
    img[60:160, 80:260, 0] = 250  # a red block: R and B differ a lot
    path = str(tmp_path_factory.mktemp('route') / 'img.png')
    Image.fromarray(img.astype(np.uint8)).save(path)  # stored as RGB
    return path


def cell_config(family, level, checkpoint):
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'table7', f'lighthead_{family}_{level.lower()}.py'))
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    return cfg


def through_config(cfg, image):
    """What the detector's backbone computes on ``image`` when everything
    comes from ``cfg``: its test pipeline (without annotations), its
    data_preprocessor, its backbone loaded by ``init_weights``.

    Returns:
        tuple: the image as the pipeline resized it (uint8, 3 x H x W, in
        the pipeline's BGR order) and the backbone's (C4, C5).
    """
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MODELS.build(cfg.model)
        detector.init_weights()
        steps = [t for t in cfg.test_dataloader.dataset.pipeline
                 if t['type'] != 'LoadAnnotations']
        packed = Compose(steps)(dict(img_path=image, img_id=0))
    detector.eval()
    assert packed['inputs'].shape[-2:] == (800, 1184)
    with torch.no_grad():
        data = detector.data_preprocessor(
            dict(inputs=[packed['inputs']],
                 data_samples=[packed['data_samples']]), False)
        feats = detector.backbone(data['inputs'])
    return packed['inputs'], feats


def source_rgb(loaded_bgr):
    """The same pixels as the RGB array PIL gives the sources' loaders."""
    return np.ascontiguousarray(loaded_bgr.permute(1, 2, 0).numpy()[:, :, ::-1])


def assert_features_equal(ours, ref):
    assert len(ours) == len(ref) == 2
    for a, b in zip(ours, ref):
        assert a.shape == b.shape
        assert b.std() > 1e-3  # not a degenerate network
        torch.testing.assert_close(a, b, rtol=1e-4,
                                   atol=1e-4 * float(b.abs().max()))


def mmpretrain_classifier(config, out_indices, seed=0):
    """An mmpretrain ``ImageClassifier`` as ``config`` builds it (its
    data_preprocessor as mmpretrain's runner sets it), initialised and with
    random BN statistics; ``out_indices`` = the cell's (C4, C5)."""
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    cfg = Config.fromfile(config)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    model_cfg.backbone.out_indices = out_indices
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(seed)
        clf = PRETRAIN_MODELS.build(model_cfg)
        clf.init_weights()
    return randomize_bn(clf, seed).eval(), cfg


def classifier_features(clf, loaded_bgr):
    """mmpretrain's own path: ClsDataPreprocessor on the image as
    mmpretrain's LoadImageFromFile gives it (BGR), then the backbone."""
    with torch.no_grad():
        x = clf.data_preprocessor(dict(inputs=[loaded_bgr]), False)['inputs']
        return clf.backbone(x)


def save_run_checkpoint(clf, cfg, path):
    """As mmengine's Runner.save_checkpoint writes it: the model's state
    dict and the run's config text in meta."""
    torch.save(dict(meta=dict(cfg=cfg.pretty_text, iter=1),
                    state_dict=clf.state_dict()), path)


# ------------------------------------------------- torchvision ShuffleNet V2
def torchvision_features(model, rgb, weights):
    t = weights.transforms()  # the source's own mean and std (0-1 RGB)
    x = TF.normalize(TF.to_tensor(Image.fromarray(rgb)), t.mean, t.std)[None]
    with torch.no_grad():
        x = model.stage2(model.maxpool(model.conv1(x)))
        c4 = model.stage3(x)
        return c4, model.conv5(model.stage4(c4))


@pytest.mark.parametrize('level', table7.LEVELS)
def test_torchvision_shufflenet_v2(tmp_path, image_path, level):
    builder, weights = TV_SHUFFLENET[level]
    torch.manual_seed(0)
    src = randomize_bn(getattr(torchvision.models, builder)()).eval()
    ckpt = str(tmp_path / f'{builder}.pth')
    torch.save(src.state_dict(), ckpt)  # as torchvision's hub file
    loaded, ours = through_config(cell_config('shufflenetv2', level, ckpt),
                                  image_path)
    ref = torchvision_features(
        src, source_rgb(loaded), getattr(torchvision.models, weights)
        .IMAGENET1K_V1)
    assert_features_equal(ours, ref)


# ------------------------------------------- official megvii ShuffleNet V1
def megvii_checkpoint(level, path):
    shapes = MODELS.build(table7.backbone_cfg('shufflenetv1', level))
    state = official_state(shapes)
    bn = [k[:-len('.running_var')] for k in state
          if k.endswith('.running_var')]
    g = torch.Generator().manual_seed(1)
    for p in bn:  # statistics far from the identity
        c = state[f'{p}.running_var'].numel()
        state[f'{p}.running_mean'] = torch.randn(c, generator=g) * 0.2
    # As released: DataParallel keys in a 'state_dict' wrapper.
    torch.save({'state_dict': {f'module.{k}': v for k, v in state.items()}},
               path)
    return state


@pytest.mark.parametrize('level', table7.LEVELS)
def test_megvii_shufflenet_v1(tmp_path, image_path, level):
    ckpt = str(tmp_path / 'ShuffleNetV1.Group3.pth.tar')
    state = megvii_checkpoint(level, ckpt)
    loaded, ours = through_config(cell_config('shufflenetv1', level, ckpt),
                                  image_path)
    # The official input: PIL RGB -> ToBGRTensor (BGR, 0-255, no mean/std).
    x = to_bgr_tensor(source_rgb(loaded))[None]
    with torch.no_grad():
        ref = official_forward(state, x, groups=3)[1:]  # stage3, stage4
    assert_features_equal(ours, ref)


def test_megvii_converted_by_the_tool_keeps_its_input(tmp_path, image_path):
    """tools/model_converters/megvii2shufflenet.py writes our layout; the
    file still says which input its weights need (meta['layout'])."""
    src = str(tmp_path / 'official.pth.tar')
    state = megvii_checkpoint('140M', src)
    dst = str(tmp_path / 'converted.pth')
    convert_checkpoint(src, dst, SHUFFLENET_V1_CONVERTERS)
    loaded, ours = through_config(cell_config('shufflenetv1', '140M', dst),
                                  image_path)
    with torch.no_grad():
        ref = official_forward(state, to_bgr_tensor(source_rgb(loaded))[None],
                               groups=3)[1:]
    assert_features_equal(ours, ref)
    # The same file under the ImageNet-RGB input of the other cells.
    cfg = cell_config('shufflenetv1', '140M', dst)
    cfg.model.data_preprocessor.update(
        mean=list(IMAGENET_RGB['mean']), std=list(IMAGENET_RGB['std']),
        bgr_to_rgb=True)
    with pytest.raises(InputMismatchError) as info:
        through_config(cfg, image_path)
    msg = str(info.value)
    assert dst in msg and 'BGR pixels in 0-255 without mean/std' in msg
    assert 'mean=[0, 0, 0], std=[1, 1, 1], bgr_to_rgb=False' in msg


# ---------------------------------------------------- torchvision MobileNet V2
def test_torchvision_mobilenet_v2(tmp_path, image_path):
    torch.manual_seed(0)
    src = randomize_bn(torchvision.models.mobilenet_v2()).eval()
    ckpt = str(tmp_path / 'mobilenet_v2.pth')
    torch.save(src.state_dict(), ckpt)
    loaded, ours = through_config(cell_config('mobilenetv2', '300M', ckpt),
                                  image_path)
    t = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
    x = TF.normalize(TF.to_tensor(Image.fromarray(source_rgb(loaded))),
                     t.mean, t.std)[None]
    with torch.no_grad():
        c4 = src.features[:14](x)  # layer5's last block: stride 16, 96 ch
        ref = (c4, src.features[14:](c4))
    assert_features_equal(ours, ref)


# -------------------------------------------- mmpretrain classifier releases
MMPRETRAIN_RELEASES = [
    # (cell, mmpretrain config of the released classifier)
    ('shufflenetv2', '140M', 'shufflenet_v2/shufflenet-v2-1x_16xb64_in1k.py'),
    ('mobilenetv2', '300M', 'mobilenet_v2/mobilenet-v2_8xb32_in1k.py'),
    ('shufflenetv1', '140M', 'shufflenet_v1/shufflenet-v1-1x_16xb64_in1k.py'),
]


@pytest.mark.parametrize('family,level,config', MMPRETRAIN_RELEASES)
def test_mmpretrain_classifier(tmp_path, image_path, family, level, config):
    cell = table7.cell(family, level)
    clf, cfg = mmpretrain_classifier(
        osp.join(MMPRETRAIN_CONFIGS, config),
        (cell['c4_index'], cell['c5_index']))
    ckpt = str(tmp_path / 'mmpretrain.pth')
    save_run_checkpoint(clf, cfg, ckpt)
    det_cfg = cell_config(family, level, ckpt)
    if family == 'shufflenetv1':
        # The V1 cells feed megvii's input; mmpretrain's V1 was trained on
        # the ImageNet RGB statistics: the config must say so, or it stops.
        with pytest.raises(InputMismatchError, match='RGB pixels, mean'):
            through_config(det_cfg, image_path)
        det_cfg.model.data_preprocessor.update(
            mean=list(IMAGENET_RGB['mean']), std=list(IMAGENET_RGB['std']),
            bgr_to_rgb=True)
    loaded, ours = through_config(det_cfg, image_path)
    assert_features_equal(ours, classifier_features(clf, loaded))


# ----------------------------------------- the project's own pretraining
@pytest.mark.parametrize('family,level', OWN)
def test_own_pretraining(tmp_path, image_path, family, level):
    """configs/pretrain/<cell>: mmpretrain's ImageClassifier with the
    cell's backbone and the recipe's data_preprocessor, saved as the Runner
    saves it (tests/tools/test_pretrain.py runs tools/pretrain.py itself)."""
    cell = table7.cell(family, level)
    config = osp.join(ROOT, 'configs', 'pretrain',
                      f'{family}_{level.lower()}_16xb64_in1k.py')
    clf, cfg = mmpretrain_classifier(config,
                                     (cell['c4_index'], cell['c5_index']))
    ckpt = str(tmp_path / 'epoch_300.pth')
    save_run_checkpoint(clf, cfg, ckpt)
    loaded, ours = through_config(cell_config(family, level, ckpt),
                                  image_path)
    assert_features_equal(ours, classifier_features(clf, loaded))


# ---------------------------------------------- the check itself can fail
def test_torchvision_weights_under_a_bgr_config_stop(tmp_path, image_path):
    ckpt = str(tmp_path / 'tv.pth')
    torch.save(torchvision.models.shufflenet_v2_x0_5().state_dict(), ckpt)
    cfg = cell_config('shufflenetv2', '40M', ckpt)
    cfg.model.data_preprocessor.update(bgr_to_rgb=False)
    with pytest.raises(InputMismatchError) as info:
        through_config(cfg, image_path)
    msg = str(info.value)
    assert 'torchvision layout' in msg and 'bgr_to_rgb=True' in msg


def test_a_wrong_input_changes_the_features(tmp_path, image_path):
    """What the check prevents is not cosmetic: the official V1 weights fed
    the ImageNet-RGB input of the other cells give other features."""
    ckpt = str(tmp_path / 'v1.pth.tar')
    state = megvii_checkpoint('40M', ckpt)
    loaded, _ = through_config(cell_config('shufflenetv1', '40M', ckpt),
                               image_path)
    rgb = source_rgb(loaded)
    right = to_bgr_tensor(rgb)[None]
    mean = torch.tensor(IMAGENET_RGB['mean']).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_RGB['std']).view(1, 3, 1, 1)
    wrong = (torch.from_numpy(rgb).permute(2, 0, 1)[None].float() - mean) / std
    with torch.no_grad():
        a = official_forward(state, right, 3)[-1]
        b = official_forward(state, wrong, 3)[-1]
    assert (a - b).abs().mean() > 0.1 * a.abs().mean()


def test_checkpoint_without_a_stated_input_is_not_checked(tmp_path,
                                                          image_path):
    """A bare state dict in our layout says nothing about its input: it
    loads under any data_preprocessor (checkpoints/README.md says which
    input each source needs)."""
    torch.manual_seed(0)
    src = MODELS.build(table7.backbone_cfg('shufflenetv2star', '40M'))
    ckpt = str(tmp_path / 'bare.pth')
    torch.save(src.state_dict(), ckpt)
    cfg = cell_config('shufflenetv2star', '40M', ckpt)
    cfg.model.data_preprocessor.update(bgr_to_rgb=False)
    through_config(cfg, image_path)  # no error
