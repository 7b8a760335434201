"""Shapes: a small synthetic COCO-format detection set, for users without COCO.

``tools/data/make_shapes.py`` writes it; ``configs/demo/`` trains on it
(:class:`ShapesDataset`: mmdet's CocoDataset with these classes).

What an image holds:

- a size drawn between ``min_size`` and ``max_size`` (default 320x240 to
  416x352, so the aspect ratio varies too);
- a cluttered background that holds no object: a colour gradient in a random
  direction, low-frequency colour blotches, stripes in half the images, and
  thin distractor strokes (lines, arcs, zig-zags);
- 1-8 objects of the classes :data:`CLASSES` (none in ~4% of the images;
  COCO has such images too), each filled with one colour, drawn one over the
  other, then sensor noise over everything. Object size is log-uniform from
  12 px to half the shorter image side (most small, some large); the
  aspect ratio (except circles) is 1:2 to 2:1 and the rotation random
  (half the rectangles axis-aligned). The colour is the class's
  :data:`PALETTE` colour jittered, or in a quarter of the objects any colour,
  so that the shape, not only the colour, tells the class; it is redrawn until
  it contrasts with what lies beneath.

What an annotation means (as in COCO, whose boxes enclose the visible
segmentation): ``segmentation`` (RLE) is the object's *visible* pixels,
``bbox`` [x, y, w, h] their tight extent in pixels (pixel ``i`` spans
``[i, i + 1)``), ``area`` their count. Objects may overlap, but each keeps at
least 60% of its pixels visible, and at least 60% of a shape must lie inside
the image, so no annotation is a sliver.

Every image is drawn from its own random stream, seeded by ``(seed, split,
index)``: the same arguments give byte-identical JSON and images (with the
same numpy and OpenCV), and image ``i`` does not depend on how many images
the split has.
"""
import json
import os
import os.path as osp
import shutil
import tempfile

import cv2
import numpy as np
from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from pycocotools import mask as mask_utils

CLASSES = ('circle', 'rectangle', 'triangle', 'star', 'cross')
#: RGB, one per class: the objects' base colours and mmdet's ``palette``.
PALETTE = [(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 180, 0),
           (145, 30, 180)]
#: Raised whenever the output for the same arguments changes, so that a
#: dataset made by another version counts as a different dataset.
GENERATOR_VERSION = 2
SPLITS = ('train', 'val')
DEFAULT_MIN_SIZE = (320, 240)  # (w, h)
DEFAULT_MAX_SIZE = (416, 352)
MAX_OBJECTS = 8
EMPTY_IMAGE_PROB = 0.04
MIN_OBJECT_SIZE = 12  # px, the smallest object's nominal size
MIN_BOX_SIDE = 8  # px, the smallest side of a (rotated, truncated) box
MIN_VISIBLE = 0.6  # of an object's pixels; also of a shape inside the image
RANDOM_COLOR_PROB = 0.25
MIN_CONTRAST = 80  # RGB distance from the mean colour beneath the object
# JPEG, as COCO: the loading path and compression artefacts are those of
# real data, and noisy images take ~40 KB instead of ~230 KB as PNG.
JPEG_QUALITY = 90


def _star(points=5, inner=0.42):
    t = np.arange(2 * points) * np.pi / points - np.pi / 2
    r = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def _circle(n=64):
    t = np.arange(n) * 2 * np.pi / n
    return np.stack([np.cos(t), np.sin(t)], 1)


_ARM = 0.3  # half-width of a cross's arms
#: Each class as a polygon in the box [-1, 1] x [-1, 1], scaled to the
#: object's width and height, then rotated.
UNIT_SHAPES = {
    'circle': _circle(),
    'rectangle': np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float),
    'triangle': np.array([[0, -1], [1, 1], [-1, 1]], float),
    'star': _star(),
    'cross': np.array([[-_ARM, -1], [_ARM, -1], [_ARM, -_ARM], [1, -_ARM],
                       [1, _ARM], [_ARM, _ARM], [_ARM, 1], [-_ARM, 1],
                       [-_ARM, _ARM], [-1, _ARM], [-1, -_ARM],
                       [-_ARM, -_ARM]], float),
}


def _background(rng, h, w):
    """A cluttered (h, w, 3) uint8 RGB background that holds no object."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    t = xx * np.float32(np.cos(theta)) + yy * np.float32(np.sin(theta))
    t = (t - t.min()) / (t.max() - t.min())
    img = c0 + (c1 - c0) * t[..., None]
    gh, gw = rng.integers(2, 7, 2)
    blotches = rng.uniform(-1, 1, (gh, gw, 3)).astype(np.float32)
    img += cv2.resize(blotches, (w, h), interpolation=cv2.INTER_CUBIC) * \
        np.float32(rng.uniform(10, 50))
    if rng.random() < 0.5:
        period, phi = rng.uniform(4, 40), rng.uniform(0, np.pi)
        stripes = np.sin(np.float32(2 * np.pi / period) *
                         (xx * np.float32(np.cos(phi)) +
                          yy * np.float32(np.sin(phi))))
        img += stripes[..., None] * np.float32(rng.uniform(8, 30))
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(3, 16))):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        thickness = int(rng.integers(1, 4))
        kind = rng.integers(3)
        if kind == 0:
            p, q = rng.integers(0, [w, h], (2, 2)).tolist()
            cv2.line(img, p, q, color, thickness, cv2.LINE_AA)
        elif kind == 1:
            center = rng.integers(0, [w, h]).tolist()
            axes = rng.integers(5, 60, 2).tolist()
            cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0,
                        float(rng.uniform(30, 200)), color, thickness,
                        cv2.LINE_AA)
        else:
            pts = rng.integers(0, [w, h]) + np.cumsum(
                rng.integers(-30, 31, (int(rng.integers(3, 7)), 2)), 0)
            cv2.polylines(img, [pts.astype(np.int32)], False, color,
                          thickness, cv2.LINE_AA)
    return img


def _object_color(rng, label, random_color_prob=RANDOM_COLOR_PROB):
    if rng.random() < random_color_prob:
        return rng.uniform(0, 255, 3)
    return np.clip(np.array(PALETTE[label]) + rng.uniform(-50, 50, 3), 0, 255)


def _place(rng, img, instances, placed, min_object=MIN_OBJECT_SIZE,
           random_color_prob=RANDOM_COLOR_PROB):
    """Try to draw one object; return its record, or None if it doesn't fit.

    ``instances`` holds ``k + 1`` where object ``k`` of ``placed`` is
    visible; both are updated when the object is drawn.
    """
    h, w = instances.shape
    label = int(rng.integers(len(CLASSES)))
    kind = CLASSES[label]
    size = np.exp(rng.uniform(np.log(min_object), np.log(min(h, w) / 2)))
    aspect = 1.0 if kind == 'circle' else np.exp(rng.uniform(-np.log(2),
                                                             np.log(2)))
    if kind == 'rectangle' and rng.random() < 0.5:
        angle = 0.0
    else:
        angle = rng.uniform(0, np.pi)
    center = rng.uniform(0, [w, h])
    c, s = np.cos(angle), np.sin(angle)
    pts = UNIT_SHAPES[kind] * [size * np.sqrt(aspect) / 2,
                               size / np.sqrt(aspect) / 2]
    pts = pts @ np.array([[c, s], [-s, c]]) + center
    pts = np.round(pts).astype(np.int32)
    # Draw in the shape's window of the image only.
    x0, y0 = np.maximum(pts.min(0), 0)
    x1, y1 = np.minimum(pts.max(0) + 1, [w, h])
    if x1 <= x0 or y1 <= y0:
        return None
    shape = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(shape, [pts - [x0, y0]], 1)
    shape = shape.astype(bool)
    area = int(shape.sum())
    if area < MIN_VISIBLE * cv2.contourArea(pts) or area == 0:
        return None  # mostly outside the image
    ys, xs = np.nonzero(shape)
    if min(np.ptp(xs), np.ptp(ys)) + 1 < MIN_BOX_SIDE:
        return None
    window = (slice(y0, y1), slice(x0, x1))
    covered = np.bincount(instances[window][shape],
                          minlength=len(placed) + 1)[1:]
    if any(obj['visible'] - n < MIN_VISIBLE * obj['area']
           for obj, n in zip(placed, covered)):
        return None
    beneath = img[window][shape].mean(0)
    for _ in range(5):
        color = _object_color(rng, label, random_color_prob)
        if np.linalg.norm(color - beneath) >= MIN_CONTRAST:
            break
    else:
        return None
    img[window][shape] = np.round(color).astype(np.uint8)
    instances[window][shape] = len(placed) + 1
    for obj, n in zip(placed, covered):
        obj['visible'] -= int(n)
    return dict(label=label, area=area, visible=area,
                color=tuple(int(v) for v in np.round(color)))


def make_image(seed, split, index, min_size=DEFAULT_MIN_SIZE,
               max_size=DEFAULT_MAX_SIZE, min_object=MIN_OBJECT_SIZE,
               max_objects=MAX_OBJECTS, random_color_prob=RANDOM_COLOR_PROB):
    """Draw image ``index`` of ``split`` ('train' or 'val').

    Args:
        seed (int): The dataset's seed.
        split (str): One of :data:`SPLITS`.
        index (int): The image's index in its split.
        min_size, max_size (tuple[int, int]): (w, h) bounds of the image size.
        min_object (int): the smallest object's nominal size in px; sizes
            are log-uniform from it to half the shorter image side.
        max_objects (int): objects per image are 1 to this many.
        random_color_prob (float): share of objects filled with any colour
            instead of their class's (then only the shape tells the class).

    Returns:
        tuple: ``img``, (H, W, 3) uint8 RGB, and its objects, a list of dicts
        with ``label`` (index into :data:`CLASSES`), ``bbox`` [x, y, w, h],
        ``area`` and ``mask`` ((H, W) bool) of the visible pixels, and
        ``color``, the RGB fill before noise.
    """
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    w = int(rng.integers(min_size[0], max_size[0] + 1))
    h = int(rng.integers(min_size[1], max_size[1] + 1))
    img = _background(rng, h, w)
    if rng.random() < EMPTY_IMAGE_PROB:
        num = 0
    else:
        num = int(rng.integers(1, max_objects + 1))
    instances = np.zeros((h, w), np.uint8)
    placed = []
    for _ in range(10 * num):  # tries: some objects don't fit
        if len(placed) == num:
            break
        obj = _place(rng, img, instances, placed, min_object,
                     random_color_prob)
        if obj is not None:
            placed.append(obj)
    noise = rng.standard_normal(img.shape, np.float32)
    noise *= np.float32(rng.uniform(3, 15))
    noise += img
    img = np.clip(noise, 0, 255, out=noise).round().astype(np.uint8)
    objects = []
    for k, obj in enumerate(placed):
        mask = instances == k + 1
        ys, xs = np.nonzero(mask)
        bbox = [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1,
                int(np.ptp(ys)) + 1]
        objects.append(dict(label=obj['label'], bbox=bbox,
                            area=int(mask.sum()), mask=mask,
                            color=obj['color']))
    return img, objects


def image_name(split, index):
    return f'{split}_{index:05d}.jpg'


def _write_split(root, split, num_images, first_image_id, info, seed,
                 min_size, max_size, log, **objects_cfg):
    """Write a split's images under ``root/split``; return its COCO dict."""
    os.makedirs(osp.join(root, split))
    images, annotations = [], []
    for i in range(num_images):
        img, objects = make_image(seed, split, i, min_size, max_size,
                                  **objects_cfg)
        image_id = first_image_id + i
        name = image_name(split, i)
        cv2.imwrite(osp.join(root, split, name),
                    cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        images.append(dict(id=image_id, file_name=name,
                           width=img.shape[1], height=img.shape[0]))
        for obj in objects:
            rle = mask_utils.encode(np.asfortranarray(obj['mask'],
                                                      dtype=np.uint8))
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id,
                category_id=obj['label'] + 1, bbox=obj['bbox'],
                area=obj['area'], iscrowd=0,
                segmentation=dict(size=rle['size'],
                                  counts=rle['counts'].decode('ascii'))))
        if (i + 1) % 100 == 0 or i + 1 == num_images:
            log(f'{split}: {i + 1}/{num_images} images')
    return dict(info=info, images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=n, supercategory='shape')
                            for i, n in enumerate(CLASSES)])


def dataset_info(num_train, num_val, seed, min_size, max_size,
                 min_object=MIN_OBJECT_SIZE, max_objects=MAX_OBJECTS,
                 random_color_prob=RANDOM_COLOR_PROB):
    """The COCO ``info`` of a dataset: what made it and with which arguments.

    Two datasets with equal ``info`` are identical.
    """
    return dict(
        description='shufflenet-det shapes (tools/data/make_shapes.py)',
        version=str(GENERATOR_VERSION),
        generator_args=dict(num_train=num_train, num_val=num_val, seed=seed,
                            min_size=list(min_size),
                            max_size=list(max_size),
                            min_object_size=min_object,
                            max_objects=max_objects,
                            random_color_prob=random_color_prob))


def ann_file(root, split):
    return osp.join(root, 'annotations', f'instances_{split}.json')


def _existing(out_dir):
    """What lies at ``out_dir``: (info or None, missing image count).

    ``info`` is None for a dataset whose annotations are missing or broken.
    """
    infos, missing = [], 0
    for split in SPLITS:
        try:
            with open(ann_file(out_dir, split)) as f:
                coco = json.load(f)
            infos.append(coco['info'])
            missing += sum(not osp.isfile(osp.join(out_dir, split,
                                                   im['file_name']))
                           for im in coco['images'])
        except (OSError, ValueError, KeyError, TypeError):
            return None, 0
    return (infos[0] if infos[0] == infos[1] else None), missing


def _difference(existing, info):
    """Says how an existing dataset's ``info`` differs from ``info``."""
    if not isinstance(existing, dict) or existing.get(
            'description') != info['description']:
        return ('made by another tool or another version of this generator, '
                'or its annotations are broken')
    if existing.get('version') != info['version']:
        return (f'made by generator version {existing.get("version")}, '
                f'this is version {info["version"]}')
    old, new = existing.get('generator_args') or {}, info['generator_args']
    return ', '.join(f'{k} {old.get(k)}, asked for {v}'
                     for k, v in new.items() if old.get(k) != v)


def summarize(coco):
    """Counts of a COCO dict: images, empty images, objects per class and
    per COCO size (small < 32^2 <= medium < 96^2 <= large)."""
    labels = [a['category_id'] - 1 for a in coco['annotations']]
    areas = np.array([a['bbox'][2] * a['bbox'][3]
                      for a in coco['annotations']])
    per_class = np.bincount(labels, minlength=len(CLASSES))
    return dict(
        images=len(coco['images']),
        empty_images=len(coco['images']) -
        len({a['image_id'] for a in coco['annotations']}),
        objects=len(labels),
        per_class=dict(zip(CLASSES, per_class.tolist())),
        per_size=dict(small=int((areas < 32**2).sum()),
                      medium=int(((areas >= 32**2) & (areas < 96**2)).sum()),
                      large=int((areas >= 96**2).sum())))


def format_summary(split, s):
    return (f'{split}: {s["images"]} images ({s["empty_images"]} without '
            f'objects), {s["objects"]} objects: ' +
            ', '.join(f'{n} {c}' for c, n in s['per_class'].items()) +
            '; by box area: ' +
            ', '.join(f'{n} {k}' for k, n in s['per_size'].items()))


def generate(out_dir, num_train=300, num_val=100, seed=0,
             min_size=DEFAULT_MIN_SIZE, max_size=DEFAULT_MAX_SIZE,
             force=False, log=print, min_object=MIN_OBJECT_SIZE,
             max_objects=MAX_OBJECTS, random_color_prob=RANDOM_COLOR_PROB):
    """Write the dataset to ``out_dir``, atomically.

    Layout, as mmdet's ``CocoDataset`` reads it (``data_root=out_dir``,
    ``ann_file='annotations/instances_{split}.json'``,
    ``data_prefix=dict(img='{split}/')``)::

        out_dir/annotations/instances_train.json, instances_val.json
        out_dir/train/train_00000.jpg ...
        out_dir/val/val_00000.jpg ...

    Images are written to a temporary directory beside ``out_dir`` which
    then replaces it, so ``out_dir`` is never half-written.

    Args:
        out_dir (str): Where to write the dataset.
        num_train, num_val (int): Images per split.
        seed (int): Seed of the whole dataset.
        min_size, max_size (tuple[int, int]): (w, h) bounds of image sizes.
        force (bool): Replace a different dataset at ``out_dir``. A
            directory that is not a COCO-style dataset (no
            ``annotations/instances_*.json``) is never replaced.
        log (callable): Receives progress and summary lines.
        min_object (int): The smallest object's nominal size, px.
        max_objects (int): The most objects an image holds.
        random_color_prob (float): Share of objects in any colour.

    Returns:
        dict | None: Per split, the counts of :func:`summarize`; None if
        ``out_dir`` already holds this dataset, complete (then nothing is
        written).

    Raises:
        FileExistsError: ``out_dir`` holds something else (see ``force``).
        ValueError: Invalid arguments.
    """
    min_size, max_size = tuple(min_size), tuple(max_size)
    if num_train < 0 or num_val < 0:
        raise ValueError('the numbers of images must be >= 0')
    if any(lo > hi for lo, hi in zip(min_size, max_size)):
        raise ValueError(f'min size {min_size} exceeds max size {max_size}')
    if min_object < MIN_BOX_SIDE:
        raise ValueError(f'the smallest object size must be at least '
                         f'{MIN_BOX_SIDE} px, got {min_object}')
    if max_objects < 1:
        raise ValueError(f'max_objects must be >= 1, got {max_objects}')
    if not 0 <= random_color_prob <= 1:
        raise ValueError('random_color_prob must be in [0, 1], got '
                         f'{random_color_prob}')
    if min(min_size) < 4 * min_object:
        raise ValueError(f'images must be at least {4 * min_object} px '
                         f'on each side to hold objects of '
                         f'{min_object} px to half their size')
    info = dataset_info(num_train, num_val, seed, min_size, max_size,
                        min_object, max_objects, random_color_prob)
    if osp.lexists(out_dir):
        is_dataset = osp.isdir(out_dir) and any(
            osp.isfile(ann_file(out_dir, s)) for s in SPLITS)
        if is_dataset:
            existing, missing = _existing(out_dir)
            if existing == info and not missing:
                log(f'{out_dir} already holds this dataset '
                    f'({info["generator_args"]}): nothing to do.')
                return None
            if existing == info:
                log(f'{out_dir} holds this dataset but {missing} images are '
                    'missing: writing it again.')
            elif not force:
                raise FileExistsError(
                    f'{out_dir} holds a different dataset '
                    f'({_difference(existing, info)}). Choose another '
                    '--out, or pass --force to replace it.')
        elif not (osp.isdir(out_dir) and not os.listdir(out_dir)):
            raise FileExistsError(
                f'{out_dir} exists and is not a COCO-style dataset (no '
                'annotations/instances_*.json); not replacing it, even with '
                '--force. Choose another --out, or remove it yourself.')

    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.shapes-tmp-', dir=parent)
    old = None
    try:
        os.makedirs(osp.join(tmp, 'annotations'))
        summary, first_image_id = {}, 1
        for split, num in zip(SPLITS, (num_train, num_val)):
            coco = _write_split(tmp, split, num, first_image_id, info, seed,
                                min_size, max_size, log,
                                min_object=min_object,
                                max_objects=max_objects,
                                random_color_prob=random_color_prob)
            first_image_id += num
            with open(ann_file(tmp, split), 'w') as f:
                json.dump(coco, f)
            summary[split] = summarize(coco)
        if osp.lexists(out_dir):  # set it aside, swap in the new one
            old = tempfile.mkdtemp(prefix='.shapes-old-', dir=parent)
            os.replace(out_dir, osp.join(old, 'dataset'))
            try:
                os.replace(tmp, out_dir)
            except OSError:
                os.replace(osp.join(old, 'dataset'), out_dir)
                raise
        else:
            os.replace(tmp, out_dir)
    finally:
        for path in (tmp, old):
            if path is not None and osp.isdir(path):
                shutil.rmtree(path)
    for split, s in summary.items():
        log(format_summary(split, s))
    return summary


@DATASETS.register_module()
class ShapesDataset(CocoDataset):
    """The shapes set for mmdet: a CocoDataset whose ``METAINFO`` is the
    generator's :data:`CLASSES` and :data:`PALETTE`, so that configs name
    this type instead of repeating the classes."""

    METAINFO = dict(classes=CLASSES, palette=PALETTE)
