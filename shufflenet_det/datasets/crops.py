"""Cut the objects of a shapes dataset out as a classification set: the
embedded demo's miniature of ImageNet pretraining (:func:`make_crops`;
``tools/data/make_shapes_crops.py`` is its command line).

Writes ``OUT/<split>/<class>/<image>_<k>.png`` (mmpretrain's CustomDataset
layout, one folder per class): every annotated object with a margin of its
box size around it, plus object-free crops (class ``background``), so that
the pretrained backbone has seen clutter too. Crops are written to a
temporary folder that then replaces OUT; running it again on the same
dataset does nothing.
"""
import json
import os
import os.path as osp
import shutil
import tempfile

import cv2
import numpy as np

BACKGROUND = 'background'


def _background_boxes(rng, w, h, boxes, num, tries=50):
    out = []
    for _ in range(tries):
        if len(out) == num:
            break
        side = int(rng.integers(24, max(25, min(w, h) // 2)))
        x, y = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
        ok = all(x + side <= bx or bx + bw <= x or y + side <= by or
                 by + bh <= y for bx, by, bw, bh in boxes)
        if ok:
            out.append((x, y, side, side))
    return out


def _read_split(data, split):
    ann = osp.join(data, 'annotations', f'instances_{split}.json')
    try:
        with open(ann) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f'{ann}: cannot read the annotations ({e}); make '
                         'the dataset first (tools/data/make_shapes.py)')


def make_crops(data, out, margin=0.15, background=1, seed=0,
               splits=('train', )):
    """Write the crops of ``data``'s ``splits`` to ``out/<split>/``;
    returns {class: count} (all splits), or None when ``out`` already holds
    them."""
    cocos = {split: _read_split(data, split) for split in splits}
    stamp = dict(source=osp.abspath(data), info=cocos['train'].get('info')
                 if 'train' in cocos else None,
                 margin=margin, background=background, seed=seed)
    if tuple(splits) != ('train', ):
        stamp['splits'] = list(splits)
    stamp_path = osp.join(out, 'crops.json')
    if osp.isfile(stamp_path):
        with open(stamp_path) as f:
            if json.load(f) == stamp:
                print(f'{out} already holds these crops: nothing to do.')
                return None
    rng = np.random.default_rng(seed)
    parent = osp.dirname(osp.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.crops-tmp-', dir=parent)
    counts = {}
    try:
        for split, coco in cocos.items():
            _crop_split(data, split, coco, tmp, rng, margin, background,
                        counts)
        with open(osp.join(tmp, 'crops.json'), 'w') as f:
            json.dump(stamp, f)
        if osp.isdir(out):
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp)
    return counts


def _crop_split(data, split, coco, tmp, rng, margin, background, counts):
    """Write the crops of one split to ``tmp/<split>/<class>/``."""
    names = {c['id']: c['name'] for c in coco['categories']}
    per_image = {}
    for a in coco['annotations']:
        per_image.setdefault(a['image_id'], []).append(a)
    for im in coco['images']:
        path = osp.join(data, split, im['file_name'])
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'{path}: cannot decode the image')
        h, w = img.shape[:2]
        stem = osp.splitext(im['file_name'])[0]
        anns = per_image.get(im['id'], [])
        crops = []
        for a in anns:
            x, y, bw, bh = a['bbox']
            m = max(2, int(round(margin * max(bw, bh))))
            crops.append((names[a['category_id']],
                          (x - m, y - m, bw + 2 * m, bh + 2 * m)))
        for box in _background_boxes(rng, w, h,
                                     [a['bbox'] for a in anns],
                                     background):
            crops.append((BACKGROUND, box))
        for k, (name, (x, y, bw, bh)) in enumerate(crops):
            x0, y0 = max(int(x), 0), max(int(y), 0)
            x1, y1 = min(int(x + bw), w), min(int(y + bh), h)
            folder = osp.join(tmp, split, name)
            os.makedirs(folder, exist_ok=True)
            cv2.imwrite(osp.join(folder, f'{stem}_{k}.png'),
                        img[y0:y1, x0:x1])
            counts[name] = counts.get(name, 0) + 1
