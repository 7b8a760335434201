"""A small synthetic COCO-format detection set, for users without COCO.

Images of a few hundred pixels with 0-8 objects of five shape classes over
cluttered backgrounds (gradients, noise, distractor strokes that are not
objects). Objects vary in scale (12 px to half the image), aspect ratio,
rotation and colour, and may overlap; a box is the full extent of the drawn
shape, including any part a later shape covers (as COCO boxes of occluded
objects approximate). Generation is seeded per image, so a dataset is
byte-identical for the same arguments.
"""
import json
import os
import os.path as osp
import shutil
import tempfile

import cv2
import numpy as np

CLASSES = ('circle', 'rectangle', 'triangle', 'star', 'cross')
PALETTE = [(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 180, 0),
           (145, 30, 180)]
FORMAT_VERSION = 1


def _polygon(kind, cx, cy, w, h, angle):
    """Vertices of a polygonal shape centred on (cx, cy)."""
    if kind == 'triangle':
        pts = np.array([[0, -1], [0.95, 0.8], [-0.95, 0.8]])
    elif kind == 'star':
        t = np.arange(10) * np.pi / 5 - np.pi / 2
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    elif kind == 'cross':
        a = 0.3
        pts = np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a],
                        [a, 1], [-a, 1], [-a, a], [-1, a], [-1, -a],
                        [-a, -a]])
    else:  # rectangle
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
    pts = pts * [w / 2, h / 2]
    c, s = np.cos(angle), np.sin(angle)
    pts = pts @ np.array([[c, s], [-s, c]])
    return np.round(pts + [cx, cy]).astype(np.int32)


def _background(rng, h, w):
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = np.linspace(0, 1, w if rng.random() < 0.5 else h)
    grad = c0 + (c1 - c0) * t[:, None]
    img = (np.broadcast_to(grad[None], (h, w, 3)) if len(t) == w else
           np.broadcast_to(grad[:, None], (h, w, 3))).copy()
    img += rng.normal(0, rng.uniform(5, 25), img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(3, 15)):  # distractor strokes
        p = rng.integers(0, [w, h], size=(2, 2))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            cv2.line(img, tuple(map(int, p[0])), tuple(map(int, p[1])), color,
                     int(rng.integers(1, 4)), cv2.LINE_AA)
        else:
            cv2.ellipse(img, tuple(map(int, p[0])),
                        (int(rng.integers(5, 60)), int(rng.integers(5, 60))),
                        float(rng.uniform(0, 180)), 0,
                        float(rng.uniform(30, 200)), color,
                        int(rng.integers(1, 3)), cv2.LINE_AA)
    return img


def _draw_mask(kind, h, w, cx, cy, bw, bh, angle):
    mask = np.zeros((h, w), np.uint8)
    if kind == 'circle':
        cv2.circle(mask, (cx, cy), max(bw // 2, 2), 1, -1)
    elif kind == 'ellipse':
        cv2.ellipse(mask, (cx, cy), (bw // 2, bh // 2), np.degrees(angle), 0,
                    360, 1, -1)
    else:
        cv2.fillPoly(mask, [_polygon(kind, cx, cy, bw, bh, angle)], 1)
    return mask


def make_image(seed, index, size_range=((320, 416), (240, 352)),
               max_objects=8):
    """One image and its objects [(class index, [x, y, w, h]), ...]."""
    rng = np.random.default_rng([seed, index])
    w = int(rng.integers(size_range[0][0], size_range[0][1] + 1))
    h = int(rng.integers(size_range[1][0], size_range[1][1] + 1))
    img = _background(rng, h, w)
    n = 0 if rng.random() < 0.04 else int(rng.integers(1, max_objects + 1))
    objects, masks = [], []
    for _ in range(n * 4):  # a few tries per object to limit occlusion
        if len(objects) == n:
            break
        label = int(rng.integers(len(CLASSES)))
        kind = CLASSES[label]
        # Log-uniform scale: many small objects, some large.
        size = float(np.exp(rng.uniform(np.log(12), np.log(min(h, w) / 2))))
        aspect = 1.0 if kind == 'circle' else float(
            np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        bw, bh = int(size * np.sqrt(aspect)), int(size / np.sqrt(aspect))
        angle = 0.0 if kind == 'rectangle' and rng.random() < 0.5 else float(
            rng.uniform(0, np.pi))
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        mask = _draw_mask(kind, h, w, cx, cy, bw, bh, angle)
        area = int(mask.sum())
        if area < 80:
            continue
        ys, xs = np.nonzero(mask)
        if (xs.max() - xs.min() + 1) < 8 or (ys.max() - ys.min() + 1) < 8:
            continue
        # At most 40% of an earlier object, or of this one, covered.
        if any((mask & m).sum() > 0.4 * min(area, m.sum()) for m in masks):
            continue
        color = np.array(PALETTE[label]) + rng.integers(-60, 61, 3)
        shade = np.clip(color, 0, 255).astype(np.uint8)
        img[mask.astype(bool)] = shade
        masks.append(mask)
        box = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
               int(ys.max() - ys.min() + 1)]
        objects.append((label, box, area))
    return img, objects


def build_split(out_dir, split, num_images, seed, first_image_id=1):
    """Write the images of a split; return its COCO dict."""
    os.makedirs(osp.join(out_dir, split), exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        img, objects = make_image(seed, (0 if split == 'train' else 1, i))
        image_id = first_image_id + i
        name = f'{split}_{i:05d}.jpg'
        cv2.imwrite(osp.join(out_dir, split, name), img,
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        images.append(dict(id=image_id, file_name=name,
                           width=img.shape[1], height=img.shape[0]))
        for label, box, area in objects:
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id,
                category_id=label + 1, bbox=box, area=area, iscrowd=0))
    return dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=n)
                            for i, n in enumerate(CLASSES)])


def generate(out_dir, num_train=300, num_val=100, seed=0, force=False,
             log=print):
    """Create the dataset at ``out_dir`` (atomically). Returns a summary.

    An existing dataset made with the same arguments is left as it is; one
    made otherwise is only replaced with ``force=True``.
    """
    info = dict(description='shufflenet-det synthetic shapes',
                version=FORMAT_VERSION, num_train=num_train,
                num_val=num_val, seed=seed)
    marker = osp.join(out_dir, 'annotations', 'instances_val.json')
    if osp.isfile(marker):
        try:
            with open(marker) as f:
                existing = json.load(f).get('info')
        except (OSError, ValueError):
            existing = None
        if existing == info:
            log(f'{out_dir} already holds this dataset (seed {seed}, '
                f'{num_train} train / {num_val} val images): nothing to do.')
            return None
        if not force:
            raise FileExistsError(
                f'{out_dir} holds another dataset ({existing}); choose '
                'another --out, or pass --force to replace it.')
    elif osp.exists(out_dir) and os.listdir(out_dir) and not force:
        raise FileExistsError(
            f'{out_dir} exists and is not a shapes dataset; choose another '
            '--out, or pass --force to replace it.')

    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.shapes-', dir=parent)
    try:
        os.makedirs(osp.join(tmp, 'annotations'))
        summary = {}
        first_id = 1
        for split, num in (('train', num_train), ('val', num_val)):
            coco = build_split(tmp, split, num, seed, first_id)
            first_id += num
            coco['info'] = info
            with open(osp.join(tmp, 'annotations',
                               f'instances_{split}.json'), 'w') as f:
                json.dump(coco, f)
            counts = np.bincount([a['category_id'] - 1
                                  for a in coco['annotations']],
                                 minlength=len(CLASSES))
            summary[split] = dict(images=num,
                                  objects=dict(zip(CLASSES, counts.tolist())))
            log(f'{split}: {num} images, {int(counts.sum())} objects ('
                + ', '.join(f'{c} {k}' for c, k in zip(CLASSES, counts))
                + ')')
        if osp.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if osp.exists(tmp):
            shutil.rmtree(tmp)
    return summary
