"""Dirty datasets: what the pre-flight refuses, what it warns about, what the
training pipeline skips, and how images in the formats met in the wild load
(docs/robustness.md)."""
import copy
import json
import os

import cv2
import numpy as np
import pytest
from dirty_images import STORED_SIZE, garble, picture, write_formats, \
    write_jpeg
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmdet.registry import TRANSFORMS

import shufflenet_det  # noqa: F401  (registers the transform and hook)
from shufflenet_det.datasets import loading
from shufflenet_det.datasets.coco_checks import (DatasetError,
                                                 check_coco_dataset,
                                                 check_image_files,
                                                 check_image_loading)
from shufflenet_det.utils.cli import worker_error_message

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
COCO_BASE = os.path.join(ROOT, 'configs', '_base_', 'datasets',
                         'coco_detection.py')

CLEAN = {
    'images': [{'id': i, 'file_name': f'{i}.jpg', 'width': 64, 'height': 48}
               for i in (1, 2, 3)],
    'annotations': [{'id': 10 + i, 'image_id': 1 + i % 3, 'category_id':
                     1 + i % 2, 'bbox': [4, 4, 20, 10], 'area': 200,
                     'iscrowd': 0} for i in range(6)],
    'categories': [{'id': 1, 'name': 'circle'}, {'id': 2, 'name': 'star'}],
}


def make_dataset(tmp_path, data=CLEAN, images=True):
    root = tmp_path / 'ds'
    (root / 'img').mkdir(parents=True)
    if images:
        for im in data['images']:
            write_jpeg(root / 'img' / im.get('file_name', 'x.jpg'))
    (root / 'ann.json').write_text(json.dumps(data))
    return dict(type='CocoDataset', data_root=str(root) + '/',
                ann_file='ann.json', data_prefix=dict(img='img/'),
                metainfo=dict(classes=('circle', 'star')))


def refusal(tmp_path, mutate):
    data = copy.deepcopy(CLEAN)
    mutate(data)
    with pytest.raises(DatasetError) as e:
        check_coco_dataset(make_dataset(tmp_path, data), 'train_dataloader'
                           '.dataset', train=True)
    msg = str(e.value)
    assert 'ann.json' in msg and 'inconsistent' in msg
    return msg


def test_clean_dataset_passes(tmp_path):
    summary = check_coco_dataset(make_dataset(tmp_path), 'ds')
    assert summary['dropped'] == {} and summary['empty_images'] == 0


def test_unknown_category_id_is_refused(tmp_path):
    def mutate(d):
        d['annotations'][1]['category_id'] = 99
        d['annotations'][4]['category_id'] = 7
    msg = refusal(tmp_path, mutate)
    assert "2 annotations have a category_id that is not in 'categories'" \
        in msg
    assert 'annotation 11 -> category 99' in msg
    assert 'annotation 14 -> category 7' in msg


def test_annotation_of_unlisted_image_is_refused(tmp_path):
    msg = refusal(tmp_path,
                  lambda d: d['annotations'][0].update(image_id=42))
    assert "1 annotations point at an image_id that is not in 'images'" \
        in msg and 'annotation 10 -> image 42' in msg


def test_many_offenders_show_the_first_few_and_the_count(tmp_path):
    def mutate(d):
        d['annotations'] = [dict(d['annotations'][0], id=100 + i,
                                 category_id=9) for i in range(12)]
    msg = refusal(tmp_path, mutate)
    assert '12 annotations' in msg and '(12 in all)' in msg
    assert 'annotation 104' in msg and 'annotation 105' not in msg


@pytest.mark.parametrize('section', ['images', 'annotations', 'categories'])
def test_duplicate_ids_are_refused(tmp_path, section):
    def mutate(d):
        d[section][1]['id'] = d[section][0]['id']
    msg = refusal(tmp_path, mutate)
    assert f'1 {section} ids are used more than once' in msg


@pytest.mark.parametrize('box', [[1, 2, 3], 'oops', [1, 2, 3, None],
                                 [1, 2, '3', 4], [True, 2, 3, 4]])
def test_box_that_is_not_four_numbers_is_refused(tmp_path, box):
    msg = refusal(tmp_path, lambda d: d['annotations'][2].update(bbox=box))
    assert "1 annotations have a 'bbox' that is not four numbers" in msg
    assert 'annotation 12' in msg


@pytest.mark.parametrize('section,key', [('images', 'file_name'),
                                         ('images', 'height'),
                                         ('annotations', 'bbox'),
                                         ('annotations', 'area'),
                                         ('categories', 'name')])
def test_missing_required_key_is_refused(tmp_path, section, key):
    msg = refusal(tmp_path, lambda d: d[section][0].pop(key))
    assert f"1 {section} lack the key '{key}'" in msg
    assert f"id {CLEAN[section][0]['id']}" in msg


def test_config_classes_missing_from_the_file_are_refused(tmp_path):
    ds = make_dataset(tmp_path)
    ds['metainfo'] = dict(classes=('circle', 'square'))
    with pytest.raises(DatasetError, match="'square'|square"):
        check_coco_dataset(ds, 'ds')


def test_degenerate_boxes_are_counted_not_refused(tmp_path):
    data = copy.deepcopy(CLEAN)
    data['annotations'][0]['bbox'] = [4, 4, 0.5, 10]
    data['annotations'][1]['area'] = 0
    data['annotations'][2]['bbox'] = [float('inf'), 4, 2, 2]
    summary = check_coco_dataset(make_dataset(tmp_path, data), 'ds')
    assert summary['dropped'] == {'under 1 pixel wide or high': 1,
                                  'zero area': 1, 'NaN or infinite': 1}


def test_categories_left_out_by_the_config_are_counted(tmp_path):
    ds = make_dataset(tmp_path)
    ds['metainfo'] = dict(classes=('circle', ))
    assert check_coco_dataset(ds, 'ds')['unused_annotations'] == 3


# --- --check-images -------------------------------------------------------

def test_check_images_header_lists_unreadable_images(tmp_path):
    ds = make_dataset(tmp_path)
    img = tmp_path / 'ds' / 'img'
    garble(img / '2.jpg', keep=20)  # header destroyed
    (img / '3.jpg').write_bytes(b'')  # empty file
    with pytest.raises(DatasetError) as e:
        check_coco_dataset(ds, 'ds', check_images='header')
    msg = str(e.value)
    assert '2 of the 3 images' in msg
    assert '2.jpg' in msg and '3.jpg' in msg and '1.jpg' not in msg
    assert 'remove them from the annotation file' in msg


def test_check_images_decode_finds_what_the_header_check_cannot(tmp_path):
    ds = make_dataset(tmp_path)
    garble(tmp_path / 'ds' / 'img' / '2.jpg')  # header intact
    check_coco_dataset(ds, 'ds', check_images='header')  # passes
    with pytest.raises(DatasetError, match='1 of the 3 images'):
        check_coco_dataset(ds, 'ds', check_images='decode')


def test_check_images_warns_about_sizes_that_differ(tmp_path, caplog):
    data = copy.deepcopy(CLEAN)
    data['images'][0]['width'] = 640
    ds = make_dataset(tmp_path, data)
    unreadable, resized, _ = check_image_files(
        [str(tmp_path / 'ds' / 'img' / f'{i}.jpg') for i in (1, 2)],
        {str(tmp_path / 'ds' / 'img' / '1.jpg'): (640, 48)})
    assert unreadable == [] and len(resized) == 1
    assert resized[0][1:3] == ((64, 48), (640, 48))
    check_coco_dataset(ds, 'ds', check_images='header')  # a warning only
    # An EXIF-rotated image listed with its displayed (rotated) size.
    exif = str(write_formats(tmp_path / 'f')['exif_rotated_jpeg'])
    _, resized, _ = check_image_files([exif], {exif: (48, 64)})
    assert 'EXIF orientation 6' in resized[0][3]


def test_check_images_warns_about_truncated_jpegs(tmp_path):
    path = write_jpeg(tmp_path / 'cut.jpg', picture(300, 400))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) * 2 // 3])  # an interrupted copy
    whole = str(write_jpeg(tmp_path / 'whole.jpg'))
    for mode in ('header', 'decode'):  # OpenCV decodes it, gray at the end
        unreadable, _, truncated = check_image_files([str(path), whole],
                                                     mode=mode)
        assert unreadable == [] and truncated == [str(path)]


def test_check_images_header_formats_and_huge_image(tmp_path):
    files = write_formats(tmp_path / 'formats')
    # 200 megapixels: over Pillow's decompression-bomb limit, under OpenCV's.
    Image = pytest.importorskip('PIL.Image')
    Image.new('L', (20000, 10000)).save(tmp_path / 'huge.png')
    paths = [str(p) for p in files.values()] + [str(tmp_path / 'huge.png')]
    unreadable, _, truncated = check_image_files(paths)
    assert unreadable == [] and truncated == []
    unreadable, _, _ = check_image_files([str(p) for p in files.values()],
                                         mode='decode')
    assert unreadable == []


# --- skipping undecodable images at run time --------------------------------

@pytest.fixture
def record(tmp_path, monkeypatch):
    path = tmp_path / 'unreadable_images.txt'
    monkeypatch.setenv(loading.UNREADABLE_IMAGES_ENV, str(path))
    monkeypatch.setattr(loading, '_warned', set())
    return path


def test_skip_transform_returns_none_and_warns_once(tmp_path, record,
                                                    monkeypatch):
    bad = str(garble(write_jpeg(tmp_path / 'bad.jpg')))
    good = str(write_jpeg(tmp_path / 'good.jpg'))
    t = loading.LoadImageFromFileOrSkip()
    warnings = []
    monkeypatch.setattr(loading, 'print_log',
                        lambda msg, **kw: warnings.append(msg))
    assert t(dict(img_path=bad)) is None
    assert t(dict(img_path=bad)) is None
    assert t(dict(img_path=good))['img'].shape == (48, 64, 3)
    assert t(dict(img_path=str(tmp_path / 'absent.jpg'))) is None
    log = '\n'.join(warnings)
    assert log.count('Skipping unreadable image') == 2, log
    assert log.count(bad) == 1
    assert list(loading.read_unreadable_record(str(record))) == [
        bad, str(tmp_path / 'absent.jpg')]
    # Another process (a fresh set) does not warn again about bad.jpg.
    loading._warned.clear()
    assert not loading.report_unreadable_image(bad, 'again')


def test_dataset_refetches_another_image(tmp_path, record):
    from mmdet.datasets import CocoDataset
    data = copy.deepcopy(CLEAN)
    ds_cfg = make_dataset(tmp_path, data)
    garble(tmp_path / 'ds' / 'img' / '1.jpg')
    ds_cfg.pop('type')
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = CocoDataset(**ds_cfg, pipeline=[
            dict(type='LoadImageFromFileOrSkip'),
            dict(type='LoadAnnotations', with_bbox=True)])
    paths = {ds[i]['img_path'] for i in range(len(ds)) for _ in range(3)}
    assert paths and not any(p.endswith('/1.jpg') for p in paths)
    assert len(loading.read_unreadable_record(str(record))) == 1


def test_worker_traceback_becomes_one_line():
    trace = ('Caught AssertionError in DataLoader worker process 0.\n'
             'Original Traceback (most recent call last):\n'
             '  File "x.py", line 1, in f\n    assert img is not None\n'
             'AssertionError: failed to load image: data/a/b.jpg\n')
    msg = worker_error_message(AssertionError(trace))
    assert '\n' not in msg and 'Traceback' not in msg
    assert msg.startswith('AssertionError: failed to load image: '
                          'data/a/b.jpg (in DataLoader worker process 0)')
    assert 'remove it from the annotation file' in msg


# --- formats and orientation ----------------------------------------------

def pipelines():
    cfg = Config.fromfile(COCO_BASE)
    return {'train': cfg.train_pipeline[0], 'test': cfg.test_pipeline[0]}


def test_coco_pipelines_skip_in_training_and_ignore_orientation():
    loads = pipelines()
    assert loads['train']['type'] == 'LoadImageFromFileOrSkip'
    # DetInferencer looks for LoadImageFromFile in the test pipeline.
    assert loads['test']['type'] == 'LoadImageFromFile'
    assert {t['color_type'] for t in loads.values()} == {
        'color_ignore_orientation'}


def test_formats_seen_in_the_wild_load_as_stored_bgr(tmp_path):
    files = write_formats(tmp_path)
    for split, cfg in pipelines().items():
        load = TRANSFORMS.build(cfg)
        for name, path in files.items():
            img = load(dict(img_path=str(path)))['img']
            assert img.dtype == np.uint8, (split, name)
            assert img.shape == (*STORED_SIZE[name], 3), (split, name)
            if min(STORED_SIZE[name]) >= 48:
                # the red block is where it is stored (top-left), BGR order
                red = (76, 76, 76) if name == 'gray_jpeg' else (0, 0, 255)
                assert np.abs(img[4, 4].astype(int) - red).max() < 40, \
                    (split, name, img[4, 4])
                assert np.abs(img[-4, -4].astype(int) - 200).max() < 40, \
                    (split, name, img[-4, -4])
    gray = TRANSFORMS.build(pipelines()['train'])(
        dict(img_path=str(files['gray_jpeg'])))['img']
    assert (gray[..., 0] == gray[..., 1]).all()


def test_opencv_default_flag_would_rotate_exif_images(tmp_path):
    """Why the configs say color_ignore_orientation: mmcv's default
    ('color') applies EXIF orientation, so the image would no longer match
    its COCO width/height and boxes."""
    path = str(write_formats(tmp_path)['exif_rotated_jpeg'])
    assert cv2.imread(path, cv2.IMREAD_COLOR).shape == (64, 48, 3)
    assert cv2.imread(path, cv2.IMREAD_COLOR
                      | cv2.IMREAD_IGNORE_ORIENTATION).shape == (48, 64, 3)


def test_inferencer_loads_like_the_test_pipeline(tmp_path):
    """mmdet's DetInferencer replaces the test pipeline's LoadImageFromFile
    by its InferencerLoader, with the same arguments."""
    from mmdet.apis.det_inferencer import DetInferencer
    from mmdet.utils import register_all_modules
    register_all_modules()
    path = str(write_formats(tmp_path)['exif_rotated_jpeg'])
    cfg = Config.fromfile(COCO_BASE)
    inferencer = DetInferencer.__new__(DetInferencer)
    pipeline = DetInferencer._init_pipeline(inferencer, cfg)
    loader = pipeline.transforms[0]
    assert type(loader).__name__ == 'InferencerLoader'
    assert loader(path)['img'].shape == (48, 64, 3)


def test_preflight_says_when_pipelines_stop_or_disagree(monkeypatch):
    from shufflenet_det.datasets import coco_checks
    said = []
    monkeypatch.setattr(coco_checks, 'print_log',
                        lambda msg, **kw: said.append(msg))
    cfg = Config.fromfile(COCO_BASE)
    check_image_loading(cfg)
    assert said == []  # the COCO configs: skip in training, same color_type
    cfg.train_dataloader.dataset.pipeline[0] = dict(type='LoadImageFromFile')
    check_image_loading(cfg)
    assert any('will stop training' in m for m in said)
    assert any('different color_type' in m and "'color'" in m for m in said)
