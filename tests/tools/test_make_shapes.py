"""The embedded shapes dataset (COCO format): the generator
(shufflenet_det.datasets.shapes) and tools/data/make_shapes.py."""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools import mask as mask_utils

from shufflenet_det.datasets import shapes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'data', 'make_shapes.py')

# Seed 0's train image 4 has no objects, so this small set has one.
SMALL = dict(num_train=6, num_val=3, seed=0)


def _generate(out_dir, **kwargs):
    return shapes.generate(str(out_dir), **{**SMALL, **kwargs},
                           log=lambda msg: None)


def _files(root):
    """{relative path: bytes} of every file under root."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes') / 'shapes'
    _generate(root)
    return root


def test_layout(dataset):
    assert sorted(os.listdir(dataset)) == ['annotations', 'train', 'val']
    for split, num in (('train', SMALL['num_train']),
                       ('val', SMALL['num_val'])):
        assert osp.isfile(dataset / 'annotations' / f'instances_{split}.json')
        assert sorted(os.listdir(dataset / split)) == [
            f'{split}_{i:05d}.jpg' for i in range(num)]


def test_deterministic(dataset, tmp_path):
    _generate(tmp_path / 'again')
    assert _files(tmp_path / 'again') == _files(dataset)
    _generate(tmp_path / 'other', seed=1)
    other = _files(tmp_path / 'other')
    assert other.keys() == _files(dataset).keys()
    assert other['train/train_00000.jpg'] != \
        _files(dataset)['train/train_00000.jpg']


@pytest.mark.parametrize('split', ['train', 'val'])
def test_valid_coco(dataset, split):
    coco = COCO(str(dataset / 'annotations' / f'instances_{split}.json'))
    cats = coco.loadCats(coco.getCatIds())
    assert [c['name'] for c in cats] == list(shapes.CLASSES)
    assert len(shapes.PALETTE) == len(shapes.CLASSES)
    assert len(coco.getImgIds()) == SMALL[f'num_{split}']
    for img in coco.loadImgs(coco.getImgIds()):
        decoded = cv2.imread(str(dataset / split / img['file_name']))
        assert decoded.shape == (img['height'], img['width'], 3)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img['id'])):
            assert ann['iscrowd'] == 0
            # The box is the tight extent of the (visible) segmentation,
            # and the area its pixel count.
            mask = coco.annToMask(ann)
            ys, xs = np.nonzero(mask)
            assert ann['bbox'] == [xs.min(), ys.min(), np.ptp(xs) + 1,
                                   np.ptp(ys) + 1]
            assert ann['area'] == mask.sum() == mask_utils.area(
                ann['segmentation'])
    ann_ids = coco.getAnnIds()
    assert len(set(ann_ids)) == len(ann_ids)
    if split == 'train':  # images without objects are valid COCO
        assert any(not coco.getAnnIds(imgIds=i) for i in coco.getImgIds())


def test_ids_unique_across_splits(dataset):
    ids = []
    for split in shapes.SPLITS:
        with open(dataset / 'annotations' / f'instances_{split}.json') as f:
            ids += [im['id'] for im in json.load(f)['images']]
    assert len(set(ids)) == len(ids)


def test_boxes_tight_to_drawn_shapes(dataset):
    """Boxes on disk equal the extent of the regenerated shapes' pixels, and
    the written image shows each shape's colour there."""
    with open(dataset / 'annotations' / 'instances_train.json') as f:
        coco = json.load(f)
    checked = 0
    for i, img in enumerate(coco['images']):
        _, objects = shapes.make_image(SMALL['seed'], 'train', i)
        anns = [a for a in coco['annotations'] if a['image_id'] == img['id']]
        assert len(anns) == len(objects)
        decoded = cv2.cvtColor(cv2.imread(str(dataset / 'train' /
                                              img['file_name'])),
                               cv2.COLOR_BGR2RGB).astype(float)
        for ann, obj in zip(anns, objects):
            ys, xs = np.nonzero(obj['mask'])
            assert ann['bbox'] == [xs.min(), ys.min(), np.ptp(xs) + 1,
                                   np.ptp(ys) + 1]
            assert ann['category_id'] == obj['label'] + 1
            # Away from the edges (JPEG ringing), the shape's fill colour
            # plus zero-mean noise.
            inner = cv2.erode(obj['mask'].astype(np.uint8),
                              np.ones((5, 5), np.uint8)).astype(bool)
            if inner.sum() >= 20:
                err = np.abs(decoded[inner].mean(0) - obj['color'])
                assert err.max() < 15, (img['file_name'], ann['id'], err)
                checked += 1
    assert checked >= 10


def test_classes_scales_and_overlap():
    objects, images = [], 40
    for i in range(images):
        img, objs = shapes.make_image(0, 'train', i)
        h, w = img.shape[:2]
        assert 320 <= w <= 416 and 240 <= h <= 352
        assert len(objs) <= shapes.MAX_OBJECTS
        for o in objs:
            x, y, bw, bh = o['bbox']
            assert 0 <= x and x + bw <= w and 0 <= y and y + bh <= h
            assert min(bw, bh) >= shapes.MIN_BOX_SIDE
        objects += [(o, i) for o in objs]
    labels = [o['label'] for o, _ in objects]
    assert set(labels) == set(range(len(shapes.CLASSES)))
    assert len(objects) >= 3 * images  # 1-8 objects per image
    sides = np.array([np.sqrt(o['bbox'][2] * o['bbox'][3])
                      for o, _ in objects])
    # Small to large: COCO's small (< 32^2), medium and large (>= 96^2).
    assert sides.min() < 16 and sides.max() > 120
    assert (sides < 32).sum() >= 10 and (sides >= 96).sum() >= 3
    ratios = np.array([o['bbox'][2] / o['bbox'][3] for o, _ in objects])
    assert ratios.min() < 0.6 and ratios.max() > 1.6
    # Objects overlap: pairs of boxes in one image intersect.
    overlaps = 0
    for (a, i), (b, j) in zip(objects, objects[1:]):
        ax, ay, aw, ah = a['bbox']
        bx, by, bw, bh = b['bbox']
        overlaps += i == j and ax < bx + bw and bx < ax + aw and \
            ay < by + bh and by < ay + ah
    assert overlaps >= 3


def test_size_options(tmp_path):
    out = tmp_path / 'fixed'
    rc = subprocess.run(
        [sys.executable, TOOL, '--out', str(out), '--num-train', '2',
         '--num-val', '1', '--size', '200', '150'],
        capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    assert 'train: 2 images' in rc.stdout
    with open(out / 'annotations' / 'instances_train.json') as f:
        coco = json.load(f)
    assert {(im['width'], im['height']) for im in coco['images']} == \
        {(200, 150)}
    assert coco['info']['generator_args']['min_size'] == [200, 150]
    rc = subprocess.run(
        [sys.executable, TOOL, '--out', str(tmp_path / 'no'), '--size', '200',
         '150', '--min-size', '100', '100'], capture_output=True, text=True)
    assert rc.returncode == 2
    assert '--size excludes --min-size and --max-size' in rc.stderr
    with pytest.raises(ValueError, match='exceeds'):
        _generate(tmp_path / 'bad', min_size=(400, 300), max_size=(300, 300))


def test_object_options(tmp_path):
    """--min-object-size and --max-objects: what the demo uses to make an
    easier set (no object under 24 px, at most 6 per image)."""
    sides, counts = [], []
    for i in range(30):
        _, objs = shapes.make_image(0, 'train', i, min_object=32,
                                    max_objects=3)
        counts.append(len(objs))
        # The nominal size is the shape's scale; its visible box can be
        # smaller (rotation, truncation at the border, occlusion).
        sides += [max(o['bbox'][2], o['bbox'][3]) for o in objs]
    assert max(counts) <= 3 and min(counts) >= 0
    assert np.median(sides) > 40
    # --random-color-prob 0: every object in its class's colour (jittered
    # by at most 50 per channel), so colour alone tells the class.
    for i in range(10):
        _, objs = shapes.make_image(0, 'train', i, random_color_prob=0.0)
        for o in objs:
            diff = np.abs(np.array(o['color']) -
                          np.array(shapes.PALETTE[o['label']]))
            assert diff.max() <= 51
    out = tmp_path / 'easy'
    rc = subprocess.run(
        [sys.executable, TOOL, '--out', str(out), '--num-train', '2',
         '--num-val', '1', '--min-object-size', '32', '--max-objects', '2',
         '--random-color-prob', '0'],
        capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    with open(out / 'annotations' / 'instances_train.json') as f:
        args = json.load(f)['info']['generator_args']
    assert (args['min_object_size'], args['max_objects'],
            args['random_color_prob']) == (32, 2, 0.0)
    with pytest.raises(ValueError, match='at least 120 px'):
        _generate(tmp_path / 'bad', min_size=(100, 100),
                  max_size=(100, 100), min_object=30)
    with pytest.raises(ValueError, match='max_objects'):
        _generate(tmp_path / 'bad2', max_objects=0)


def test_idempotent_and_force(tmp_path):
    out = tmp_path / 'shapes'
    args = dict(num_train=3, num_val=2, seed=0)
    assert _generate(out, **args) is not None
    before = _files(out)
    mtimes = {p: os.stat(out / p).st_mtime_ns for p in before}

    # Same arguments: nothing is written.
    lines = []
    assert shapes.generate(str(out), **args, log=lines.append) is None
    assert any('already holds this dataset' in ln for ln in lines)
    assert {p: os.stat(out / p).st_mtime_ns for p in before} == mtimes

    # Different arguments: refused, untouched, unless force.
    with pytest.raises(FileExistsError, match='seed 0, asked for 1'):
        _generate(out, num_train=3, num_val=2, seed=1)
    assert _files(out) == before
    _generate(out, num_train=3, num_val=2, seed=1, force=True)
    _generate(tmp_path / 'fresh', num_train=3, num_val=2, seed=1)
    assert _files(out) == _files(tmp_path / 'fresh')

    # An incomplete dataset (an image lost) is written again.
    os.remove(out / 'val' / 'val_00001.jpg')
    _generate(out, num_train=3, num_val=2, seed=1)
    assert _files(out) == _files(tmp_path / 'fresh')

    # A directory that is no dataset is never replaced.
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'keep.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='not a COCO-style dataset'):
        _generate(other, force=True)
    assert (other / 'keep.txt').read_text() == 'mine'
    # No temporary directories are left beside the datasets.
    assert sorted(os.listdir(tmp_path)) == ['fresh', 'other', 'shapes']


def test_cli_reuses_and_refuses(tmp_path):
    """The tool on an existing dataset: the same arguments do nothing
    (status 0), others are refused with one line (status 1)."""
    out = tmp_path / 'shapes'
    _generate(out, num_train=3, num_val=2, seed=0)
    args = [sys.executable, TOOL, '--out', str(out), '--num-train', '3',
            '--num-val', '2']
    rc = subprocess.run(args, capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    assert 'already holds this dataset' in rc.stdout
    rc = subprocess.run(args + ['--seed', '1'], capture_output=True,
                        text=True)
    assert rc.returncode == 1
    assert rc.stderr.startswith('error: ') and 'seed 0, asked for 1' in \
        rc.stderr


def test_atomic_on_failure(tmp_path, monkeypatch):
    out = tmp_path / 'shapes'
    _generate(out, num_train=2, num_val=1)
    before = _files(out)
    written = []

    def failing_imwrite(path, img, params=None):
        if len(written) == 2:
            raise OSError('disk full')
        written.append(path)
        return cv2.imwrite(path, img, params)

    monkeypatch.setattr(shapes.cv2, 'imwrite', failing_imwrite)
    with pytest.raises(OSError, match='disk full'):
        _generate(out, num_train=2, num_val=1, seed=5, force=True)
    assert _files(out) == before
    assert os.listdir(tmp_path) == ['shapes']


def test_mmdet_coco_dataset(dataset):
    from mmengine.registry import init_default_scope
    from mmdet.registry import DATASETS

    # Unscoped names under the mmdet scope, as mmdet's own configs; a
    # scoped 'mmdet.X' is not found for mmcv's transforms once the mmdet
    # scope is current (mmengine looks it up in mmdet's registry only).
    init_default_scope('mmdet')
    with open(dataset / 'annotations' / 'instances_train.json') as f:
        coco = json.load(f)
    # The classes and palette come with the type (ShapesDataset.METAINFO).
    ds = DATASETS.build(dict(
        type='ShapesDataset',
        data_root=str(dataset) + '/',
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True,
                       with_mask=True)]))
    assert ds.metainfo['classes'] == shapes.CLASSES
    assert ds.metainfo['palette'] == shapes.PALETTE
    with_objects = {a['image_id'] for a in coco['annotations']}
    assert len(ds) == len(with_objects) == SMALL['num_train'] - 1
    sample = ds[0]
    img = coco['images'][0]
    assert sample['img'].shape == (img['height'], img['width'], 3)
    anns = [a for a in coco['annotations'] if a['image_id'] == img['id']]
    xyxy = [[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)]
    np.testing.assert_array_equal(sample['gt_bboxes'].numpy(), xyxy)
    np.testing.assert_array_equal(sample['gt_bboxes_labels'],
                                  [a['category_id'] - 1 for a in anns])
    assert sample['gt_masks'].masks.sum(axis=(1, 2)).tolist() == \
        [a['area'] for a in anns]
