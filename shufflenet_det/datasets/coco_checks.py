"""Checks of a config's COCO-style datasets before training starts.

mmdet reads annotations when the Runner builds the data loaders and images
in the loader workers, so a wrong path or a broken file surfaces as a long
traceback, sometimes after minutes. ``check_dataloaders(cfg)`` looks at every
dataset of the config first and raises :class:`DatasetError`, naming the file
or config field and what to do, for:

- a data root or annotation file that does not exist;
- an annotation file that is not JSON (truncated) or not COCO (no
  ``images``/``annotations``/``categories``);
- annotations pointing at images that are not on disk. Policy: fail, listing
  the missing paths, rather than train on a silently smaller dataset. An image
  that exists but cannot be decoded is reported with its path when it is
  loaded (mmcv's ``LoadImageFromFile``);

and warns, with counts, about boxes that mmdet's ``CocoDataset`` drops (zero
or negative size, NaN/inf, entirely outside the image) and images without
annotations (kept for validation and testing, filtered for training when the
dataset's ``filter_cfg.filter_empty_gt`` is set, as in mmdet's configs).
"""
import json
import math
import os.path as osp

from mmengine.logging import print_log

#: Dataset wrappers and the keys that hold the wrapped datasets.
_WRAPPERS = {'RepeatDataset': 'dataset', 'ClassBalancedDataset': 'dataset',
             'MultiImageMixDataset': 'dataset', 'ConcatDataset': 'datasets'}


class DatasetError(ValueError):
    """A dataset named by the config cannot be used as it is."""


def _datasets(cfg, field):
    """(field path, dataset cfg) of every leaf dataset under ``field``."""
    todo = [(field, cfg)]
    while todo:
        path, ds = todo.pop()
        inner = _WRAPPERS.get(ds.get('type', ''))
        if inner is None:
            yield path, ds
        elif inner == 'datasets':
            todo += [(f'{path}.datasets[{i}]', d)
                     for i, d in enumerate(ds['datasets'])]
        else:
            todo.append((f'{path}.dataset', ds['dataset']))


def _join(root, path):
    return path if not root or osp.isabs(path) else osp.join(root, path)


def load_coco_json(ann_file, field='ann_file'):
    """Parse a COCO detection JSON or raise DatasetError naming it."""
    if not osp.isfile(ann_file):
        raise DatasetError(f'{field}: annotation file {ann_file} not found.')
    try:
        with open(ann_file, encoding='utf-8') as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(
            f'{field}: {ann_file} is not valid JSON ({e}); the file is '
            'probably truncated (an interrupted download or copy): fetch it '
            'again.') from None
    missing = [k for k in ('images', 'annotations', 'categories')
               if not isinstance(data, dict) or k not in data]
    if missing:
        raise DatasetError(
            f'{field}: {ann_file} is not a COCO detection annotation file: '
            f'it has no {", ".join(repr(k) for k in missing)}. Expected the '
            'layout of instances_train2017.json.')
    return data


def check_coco_dataset(ds, field, train=False, logger='current'):
    """Check one CocoDataset-like config dict. Returns a summary dict."""
    root = ds.get('data_root') or ''
    if root and not osp.isdir(root):
        raise DatasetError(
            f'{field}.data_root: directory {root} does not exist. Put the '
            'dataset there (README.md, "Getting COCO"), or point data_root '
            'elsewhere with --cfg-options.')
    ann_file = _join(root, ds.get('ann_file', ''))
    data = load_coco_json(ann_file, f'{field}.ann_file')

    prefix = ds.get('data_prefix', {}).get('img', '')
    img_dir = _join(root, prefix)
    missing = [im['file_name'] for im in data['images']
               if not osp.isfile(osp.join(img_dir, im['file_name']))]
    if missing:
        shown = ', '.join(osp.join(img_dir, m) for m in missing[:5])
        raise DatasetError(
            f'{field}: {len(missing)} of the {len(data["images"])} images '
            f'listed in {ann_file} are not on disk (first: {shown}). Check '
            f'{field}.data_prefix.img, or remove those images from the '
            'annotation file.')

    sizes = {im['id']: (im.get('width'), im.get('height'))
             for im in data['images']}
    bad = {'zero or negative size': 0, 'NaN or infinite': 0,
           'outside the image': 0, 'unknown image id': 0}
    examples = {}
    annotated = set()
    for ann in data['annotations']:
        reason = None
        box = ann.get('bbox', [])
        if ann.get('image_id') not in sizes:
            reason = 'unknown image id'
        elif len(box) != 4 or not all(
                isinstance(v, (int, float)) and math.isfinite(v) for v in box):
            reason = 'NaN or infinite'
        elif box[2] <= 0 or box[3] <= 0:
            reason = 'zero or negative size'
        else:
            w, h = sizes[ann['image_id']]
            x, y, bw, bh = box
            if w and h and (x >= w or y >= h or x + bw <= 0 or y + bh <= 0):
                reason = 'outside the image'
        if reason:
            bad[reason] += 1
            examples.setdefault(reason, ann.get('id'))
        else:
            annotated.add(ann['image_id'])
    dropped = {k: v for k, v in bad.items() if v}
    if dropped:
        detail = '; '.join(f'{v} {k} (e.g. annotation id {examples[k]})'
                           for k, v in dropped.items())
        print_log(f'{field}: {ann_file}: boxes ignored by mmdet: {detail}.',
                  logger=logger, level=30)
    empty = len(sizes) - len(annotated)
    if empty:
        filtered = train and ds.get('filter_cfg', {}).get('filter_empty_gt')
        what = 'filtered out for training' if filtered else 'kept'
        print_log(f'{field}: {empty} images without (valid) annotations, '
                  f'{what}.', logger=logger, level=20)
    return dict(images=len(sizes), annotations=len(data['annotations']),
                dropped=dropped, empty_images=empty)


def check_dataloaders(cfg, splits=('train', 'val', 'test'), logger='current'):
    """Check the COCO-style datasets of ``cfg``'s data loaders."""
    results = {}
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or 'dataset' not in loader:
            continue
        for field, ds in _datasets(loader['dataset'],
                                   f'{split}_dataloader.dataset'):
            if 'ann_file' not in ds:
                continue
            results[field] = check_coco_dataset(
                ds, field, train=split == 'train', logger=logger)
    return results
