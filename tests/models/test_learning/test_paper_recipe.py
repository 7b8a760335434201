"""The learning test of the paper's recipe: a Table 7 cell's own config
(SGD with momentum and warm-up, OHEM over all proposals, the thin map
without normalisation, BN and the first stage frozen, the COCO anchors and
proposal counts), fine-tuned from a backbone pretrained in the fixture on
crops of the objects, over-fits four generated images and detects them.

Only what a miniature must change is changed, as in
configs/table7/embedded/finetune_shapes.py: the data, classes, scale, the
schedule's length and the learning rate. The checks that the frozen parts
stayed frozen and that OHEM chose the hardest RoIs make the test fail when
the freezing or the sampler is broken; tests/models/test_learning/
test_overfit.py is the same test for the demo's recipe.
"""
import os.path as osp

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
CELL = osp.join(ROOT, 'configs', 'table7', 'lighthead_shufflenetv2star_40m.py')
PRETRAIN = osp.join(ROOT, 'configs', 'table7', 'embedded',
                    'pretrain_crops.py')
FINETUNE = osp.join(ROOT, 'configs', 'table7', 'embedded',
                    'finetune_shapes.py')
SCALE = (320, 256)
PRETRAIN_ITERS = 400
ITERS = 200
LR = 0.02
MIN_MAP = 0.6


def _pretrain_config(crops, work_dir):
    from mmengine.config import Config
    cfg = Config.fromfile(PRETRAIN)
    cfg.work_dir = work_dir
    cfg.train_dataloader.update(batch_size=16, num_workers=0,
                                persistent_workers=False)
    cfg.train_dataloader.dataset.data_root = crops
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=PRETRAIN_ITERS)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.05, by_epoch=False, begin=0,
             end=20),
        dict(type='CosineAnnealingLR', by_epoch=False, begin=20,
             end=PRETRAIN_ITERS, eta_min=1e-5)]
    cfg.default_hooks.checkpoint.interval = PRETRAIN_ITERS
    cfg.default_hooks.logger.interval = 50
    cfg.visualizer = dict(type='UniversalVisualizer', vis_backends=[])
    return cfg


def _finetune_config(data_root, checkpoint, work_dir):
    from mmengine.config import Config
    cfg = Config.fromfile(CELL)
    cfg.merge_from_dict(Config.fromfile(FINETUNE).to_dict())
    ann = 'annotations/instances_train.json'
    train = [dict(type='LoadImageFromFile'),
             dict(type='LoadAnnotations', with_bbox=True),
             dict(type='Resize', scale=SCALE, keep_ratio=True),
             dict(type='PackDetInputs')]
    test = [dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=SCALE, keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs',
                 meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                            'scale_factor'))]
    for split, pipeline in (('train', train), ('val', test)):
        cfg[f'{split}_dataloader'].update(
            batch_size=4, num_workers=0, persistent_workers=False)
        dataset = cfg[f'{split}_dataloader'].dataset
        dataset.update(data_root=data_root, ann_file=ann,
                       data_prefix=dict(img='train/'), pipeline=pipeline)
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    cfg.val_evaluator.ann_file = osp.join(data_root, ann)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    cfg.work_dir = work_dir
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=ITERS,
                         val_interval=10 * ITERS)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
             end=30),
        dict(type='MultiStepLR', by_epoch=False, begin=0, end=ITERS,
             milestones=[int(ITERS * 0.8)], gamma=0.1)]
    cfg.optim_wrapper.optimizer.lr = LR  # calibrated for ITERS
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                        interval=10 * ITERS)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)
    cfg.log_processor = dict(by_epoch=False)
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.visualizer = dict(type='DetLocalVisualizer', vis_backends=[])
    return cfg


def _run(cfg):
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    runner.train()
    DefaultScope._instance_dict.pop(runner._experiment_name, None)
    return runner


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """Four shapes images in random colours, and the V2* 40M backbone
    pretrained on the object crops of 40 others (the ImageNet step)."""
    from shufflenet_det.datasets.crops import make_crops
    from shufflenet_det.datasets.shapes import generate
    root = tmp_path_factory.mktemp('paper') / 'shapes'
    generate(str(root), num_train=4, num_val=1, seed=3, min_size=(224, 176),
             max_size=(256, 192), min_object=24, max_objects=3,
             random_color_prob=1.0, log=lambda *a: None)
    # The "ImageNet" of this test: crops of another 40 images.
    pre = tmp_path_factory.mktemp('pre') / 'shapes'
    generate(str(pre), num_train=40, num_val=1, seed=4, min_size=(224, 176),
             max_size=(256, 192), min_object=24, max_objects=3,
             random_color_prob=1.0, log=lambda *a: None)
    crops = str(tmp_path_factory.mktemp('crops') / 'crops')
    make_crops(str(pre), crops, margin=0.15, background=1)
    work = str(tmp_path_factory.mktemp('pretrain'))
    torch.manual_seed(0)
    _run(_pretrain_config(crops, work))
    return str(root), osp.join(work, f'iter_{PRETRAIN_ITERS}.pth')


@pytest.fixture(scope='module')
def trained(pretrained, tmp_path_factory):
    data_root, checkpoint = pretrained
    cfg = _finetune_config(data_root, checkpoint,
                           str(tmp_path_factory.mktemp('finetune')))
    torch.manual_seed(0)
    return _run(cfg), checkpoint


def test_paper_recipe_is_what_runs(trained):
    """The config that trained is the paper's: SGD, OHEM, a plain thin map,
    frozen BN and stage 1, COCO anchors and proposal counts."""
    runner, _ = trained
    model = runner.model
    cfg = runner.cfg
    assert type(runner.optim_wrapper.optimizer).__name__ == 'SGD'
    assert type(model.roi_head.bbox_sampler).__name__ == 'HardestRoISampler'
    assert not any(isinstance(m, _BatchNorm)
                   for m in model.thin_map.modules())
    assert model.rpn_head.prior_generator.base_sizes == [16]
    assert cfg.model.rpn_head.anchor_generator.scales == [2, 4, 8, 16, 32]
    assert cfg.model.train_cfg.rpn_proposal.max_per_img == 2000
    assert model.backbone.frozen_stages == 1 and model.backbone.norm_eval


def test_frozen_parts_stay_as_pretrained(trained):
    """BN (statistics and affine) everywhere in the backbone, and the stem
    and first stage entirely, end the run as the checkpoint gave them."""
    runner, checkpoint = trained
    source = torch.load(checkpoint, map_location='cpu',
                        weights_only=False)['state_dict']
    backbone = runner.model.backbone
    bn_prefixes = tuple(f'{n}.' for n, m in backbone.named_modules()
                        if isinstance(m, _BatchNorm))
    frozen = ('conv1.', 'layers.0.')
    checked = moved = 0
    for key, value in backbone.state_dict().items():
        if key.endswith('num_batches_tracked'):
            continue
        if key.startswith(frozen) or key.startswith(bn_prefixes):
            assert torch.equal(value, source[f'backbone.{key}']), key
            checked += 1
        elif not torch.equal(value, source[f'backbone.{key}']):
            moved += 1
    assert checked > 50 and moved > 10  # the rest did train


def test_paper_recipe_overfits_and_detects(trained):
    runner, _ = trained
    metrics = runner.val_loop.run()
    mAP = metrics.get('coco/bbox_mAP', 0.0)  # no metric: nothing detected
    print(f'paper recipe: COCO mAP {mAP:.3f} after {ITERS} iterations')
    assert mAP >= MIN_MAP, (
        f'the Table 7 recipe fine-tuned {ITERS} iterations on 4 images from '
        f'a pretrained backbone reaches COCO mAP {mAP:.3f} on them; '
        f'>= {MIN_MAP} expected')
