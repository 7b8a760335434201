"""Bad input makes tools/train.py and tools/test.py stop with one clear
message that names the file or field, exit status 1 and no traceback."""
import json
import shutil

import pytest

from cli_helpers import DEMO, ROOT, run_tool, tiny_config


def assert_clean_error(proc, *needles):
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    message = proc.stderr
    for needle in needles:
        assert needle in message, message[-2000:]


@pytest.fixture
def dataset(tmp_path, shapes_root):
    """A private copy of the tiny dataset that a test may break."""
    root = tmp_path / 'shapes'
    shutil.copytree(shapes_root, root)
    return root


def train(tmp_path, config, *options):
    return run_tool('tools/train.py', config, '--work-dir',
                    str(tmp_path / 'work'), *options)


def test_missing_data_root(tmp_path):
    proc = train(tmp_path, DEMO, '--cfg-options',
                 'train_dataloader.dataset.data_root=/nowhere/shapes/')
    assert_clean_error(proc, 'train_dataloader.dataset.data_root',
                       '/nowhere/shapes/')


def test_truncated_annotation_file(tmp_path, dataset):
    ann = dataset / 'annotations' / 'instances_train.json'
    ann.write_text(ann.read_text()[:500])
    proc = train(tmp_path, tiny_config(tmp_path, dataset))
    assert_clean_error(proc, 'instances_train.json', 'truncated')


def test_annotation_file_that_is_not_coco(tmp_path, dataset):
    (dataset / 'annotations' / 'instances_val.json').write_text(
        json.dumps({'images': []}))
    proc = train(tmp_path, tiny_config(tmp_path, dataset))
    assert_clean_error(proc, 'instances_val.json', "'annotations'",
                       "'categories'")


def test_missing_image_fails_with_its_path(tmp_path, dataset):
    victim = sorted((dataset / 'train').iterdir())[1]
    victim.unlink()
    proc = train(tmp_path, tiny_config(tmp_path, dataset))
    assert_clean_error(proc, victim.name, '1 of the 8 images')


def test_unknown_backbone_lists_valid_families(tmp_path, dataset):
    proc = train(tmp_path, tiny_config(tmp_path, dataset), '--cfg-options',
                 'model.backbone.family=resnet')
    assert_clean_error(proc, "'resnet'", 'shufflenetv2star', 'xception')


def test_unsupported_widen_factor_lists_valid_ones(tmp_path, dataset):
    proc = train(tmp_path, tiny_config(tmp_path, dataset), '--cfg-options',
                 'model.backbone.widen_factor=0.75')
    assert_clean_error(proc, '0.75', '0.5', '2.0')


def test_missing_pretrained_checkpoint_says_what_to_do(tmp_path):
    from mmengine.config import Config

    from shufflenet_det.utils.cli import ConfigError, check_pretrained
    cfg = Config.fromfile(ROOT + '/configs/lighthead_v2star.py')
    ckpt = cfg.model.backbone.init_cfg.checkpoint
    assert ckpt == 'checkpoints/shufflenetv2star_140m_imagenet.pth'
    cfg.model.backbone.init_cfg.checkpoint = str(tmp_path / 'absent.pth')
    with pytest.raises(ConfigError) as e:
        check_pretrained(cfg)
    for needle in ('absent.pth', 'init_cfg=None', 'tools/model_converters/',
                   'configs/pretrain/'):
        assert needle in str(e.value)
    cfg.model.backbone.init_cfg.checkpoint = __file__  # exists: no error
    check_pretrained(cfg)


def test_debug_shows_the_traceback(tmp_path):
    proc = train(tmp_path, DEMO, '--debug', '--cfg-options',
                 'train_dataloader.dataset.data_root=/nowhere/')
    assert proc.returncode != 0
    assert 'Traceback' in proc.stderr


def test_invalid_boxes_are_counted(tmp_path, dataset):
    from shufflenet_det.datasets.coco_checks import check_coco_dataset
    ann_path = dataset / 'annotations' / 'instances_train.json'
    data = json.loads(ann_path.read_text())
    anns = data['annotations']
    anns[0]['bbox'] = [10, 10, 0, 5]  # zero width
    anns[1]['bbox'] = [10, 10, -4, 5]  # negative
    anns[2]['bbox'] = [float('nan'), 1, 2, 3]
    anns[3]['bbox'] = [5000, 5000, 10, 10]  # outside
    ann_path.write_text(json.dumps(data))
    summary = check_coco_dataset(
        dict(data_root=str(dataset) + '/',
             ann_file='annotations/instances_train.json',
             data_prefix=dict(img='train/'),
             filter_cfg=dict(filter_empty_gt=True)),
        'train_dataloader.dataset', train=True)
    assert summary['dropped'] == {'zero or negative size': 2,
                                  'NaN or infinite': 1,
                                  'outside the image': 1}
