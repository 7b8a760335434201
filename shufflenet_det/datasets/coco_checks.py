"""Checks of a config's COCO-style datasets before training starts.

mmdet reads annotations when the Runner builds the data loaders and images
in the loader workers, so a wrong path or a broken file surfaces as a long
traceback, sometimes after minutes, or not at all (mmdet drops what it does
not understand). ``check_dataloaders(cfg)`` looks at every dataset of the
config first. Policy (docs/robustness.md):

Refused before training (:class:`DatasetError`, naming the file, the first
offending ids with their count, and what to do), because the file is
inconsistent and training on it would silently train on something else:

- a data root or annotation file that does not exist, a file that is not
  JSON (truncated) or not COCO (no ``images``/``annotations``/``categories``);
- entries without a key mmdet reads (:data:`REQUIRED_KEYS`);
- duplicate image, annotation or category ids;
- annotations whose ``image_id`` is not among the images, or whose
  ``category_id`` is not among the categories;
- boxes that are not four numbers;
- class names of the config (``metainfo.classes``) that the file's
  categories do not have;
- images that are not on disk, and, with ``check_images``, images whose
  header (or, with ``'decode'``, whose pixels) cannot be read.

Warned about, with counts, and trained on without them, because mmdet's
``CocoDataset`` drops them one by one and the rest of the file is sound:
boxes that are degenerate (under one pixel wide or high, zero area, NaN or
infinite, entirely outside the image); annotations of categories that the
config's classes leave out (logged); images without annotations (kept for
validation and testing, filtered for training when ``filter_empty_gt``);
with ``check_images``, images whose size differs from the file's
``width``/``height``. An image that cannot be decoded at run time is skipped
during training by ``LoadImageFromFileOrSkip`` (counted warning).
"""
import json
import logging
import math
import os.path as osp
import time
import warnings
from collections import Counter

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


#: Keys of each section that mmdet's CocoDataset (and pycocotools) read.
REQUIRED_KEYS = {
    'images': ('id', 'file_name', 'width', 'height'),
    'annotations': ('id', 'image_id', 'category_id', 'bbox', 'area'),
    'categories': ('id', 'name'),
}


def _first(items, n=5):
    """'a, b, c, ... (N in all)' of a list."""
    items = list(items)
    shown = ', '.join(str(i) for i in items[:n])
    return shown + (f', ... ({len(items)} in all)' if len(items) > n else '')


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def coco_consistency_problems(data, classes=None):
    """What makes a parsed COCO file unusable as it is: a list of sentences,
    each naming the offending ids (first few and the count) and the fix."""
    problems = []
    complete = {}
    for section, keys in REQUIRED_KEYS.items():
        entries = data[section] if isinstance(data[section], list) else []
        if not isinstance(data[section], list):
            problems.append(f"'{section}' is not a list.")
        lacking = {}
        for pos, entry in enumerate(entries):
            absent = [k for k in keys if not isinstance(entry, dict)
                      or k not in entry]
            for k in absent:
                ident = entry.get('id') if isinstance(entry, dict) else None
                lacking.setdefault(k, []).append(
                    f'id {ident}' if ident is not None else f'#{pos}')
        for k, where in lacking.items():
            problems.append(
                f"{len(where)} {section} lack the key '{k}' (first: "
                f'{_first(where)}); add it (mmdet reads it) or remove those '
                'entries.')
        complete[section] = [e for e in entries if isinstance(e, dict)
                             and all(k in e for k in keys)]

    for section, entries in complete.items():
        counts = Counter(e['id'] for e in entries)
        dup = [i for i, c in counts.items() if c > 1]
        if dup:
            problems.append(
                f'{len(dup)} {section} ids are used more than once (first: '
                f'{_first(dup)}); ids must be unique: renumber or remove the '
                'duplicates.')

    image_ids = {e['id'] for e in complete['images']}
    cat_ids = {e['id'] for e in complete['categories']}
    bad_img, bad_cat, bad_box = [], [], []
    for ann in complete['annotations']:
        if ann['image_id'] not in image_ids:
            bad_img.append(
                f"annotation {ann['id']} -> image {ann['image_id']}")
        if ann['category_id'] not in cat_ids:
            bad_cat.append(
                f"annotation {ann['id']} -> category {ann['category_id']}")
        box = ann['bbox']
        if not (isinstance(box, list) and len(box) == 4
                and all(_is_number(v) for v in box)):
            bad_box.append(f"annotation {ann['id']}: {box!r}"[:80])
    if bad_img:
        problems.append(
            f"{len(bad_img)} annotations point at an image_id that is not in "
            f"'images' (first: {_first(bad_img)}); add those images or remove "
            'the annotations.')
    if bad_cat:
        problems.append(
            f"{len(bad_cat)} annotations have a category_id that is not in "
            f"'categories' (first: {_first(bad_cat)}); add the category to "
            "'categories' (and to the config's metainfo.classes) or correct "
            'or remove the annotations.')
    if bad_box:
        problems.append(
            f"{len(bad_box)} annotations have a 'bbox' that is not four "
            f'numbers [x, y, width, height] (first: {_first(bad_box, 3)}); '
            'correct or remove them.')
    if classes is not None and complete['categories']:
        names = {e['name'] for e in complete['categories']}
        absent = [c for c in classes if c not in names]
        if absent:
            problems.append(
                f'{len(absent)} of the config\'s {len(classes)} classes '
                f'(metainfo.classes) are not among the file\'s categories '
                f'(first: {_first(absent)}; the file has '
                f'{_first(sorted(names))}); fix metainfo.classes to use the '
                'file\'s category names.')
    return problems


def _config_classes(ds):
    """The class names a CocoDataset config would use: its
    ``metainfo.classes``, else its type's ``METAINFO`` (CocoDataset,
    ShapesDataset...); None if unknown."""
    classes = (ds.get('metainfo') or {}).get('classes')
    if classes is None and isinstance(ds.get('type'), str):
        from mmdet.registry import DATASETS
        dataset_cls = DATASETS.get(ds['type'])
        classes = getattr(dataset_cls, 'METAINFO', {}).get('classes')
    return list(classes) if classes is not None else None


def _exif_orientation(im):
    try:
        return im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001  (a broken EXIF block: loaded as stored)
        return 1


def _jpeg_ends(path):
    """Whether a JPEG has its end-of-image marker (in its last 4 KiB, where
    some writers add padding after it)."""
    with open(path, 'rb') as f:
        f.seek(max(0, osp.getsize(path) - 4096))
        return b'\xff\xd9' in f.read()


def check_image_files(paths, sizes=None, mode='header'):
    """Read every image's header (``mode='header'``: format and size, no
    pixel decoding, Pillow) or decode it (``'decode'``: OpenCV, as the
    training pipeline does). Returns ``(unreadable, resized, truncated)``:
    lists of ``(path, reason)``, of ``(path, stored (w, h), listed (w, h),
    note)`` for images whose size differs from ``sizes[path]``, and of the
    JPEGs without an end-of-image marker (an interrupted copy: OpenCV
    decodes them with the missing part gray)."""
    import cv2
    from PIL import Image

    unreadable, resized, truncated = [], [], []
    flag = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    limit = 1 << 30  # OpenCV's default CV_IO_MAX_IMAGE_PIXELS
    old_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # no decompression-bomb refusal of panoramas
    try:
        for path in paths:
            orientation = 1
            try:
                with warnings.catch_warnings(), Image.open(path) as im:
                    warnings.simplefilter('ignore')
                    w, h = im.size
                    fmt = im.format
                    orientation = _exif_orientation(im)
                if w * h > limit:
                    raise ValueError(
                        f'{w}x{h} pixels, more than OpenCV decodes '
                        '(2^30, CV_IO_MAX_IMAGE_PIXELS)')
                if mode == 'decode' and cv2.imread(path, flag) is None:
                    raise ValueError('OpenCV cannot decode the pixels')
            except Exception as e:  # noqa: BLE001
                if osp.getsize(path) == 0:
                    reason = 'empty file'
                elif type(e).__name__ == 'UnidentifiedImageError':
                    reason = 'unknown format or corrupt header'
                else:
                    reason = f'{type(e).__name__}: {e}'[:120]
                unreadable.append((path, reason))
                continue
            if fmt == 'JPEG' and not _jpeg_ends(path):
                truncated.append(path)
            listed = (sizes or {}).get(path)
            if listed and tuple(listed) != (w, h):
                note = (' (EXIF orientation %d: the listed size is the '
                        'rotated one)' % orientation
                        if orientation in (5, 6, 7, 8)
                        and tuple(listed) == (h, w) else '')
                resized.append((path, (w, h), tuple(listed), note))
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit
    return unreadable, resized, truncated


def check_coco_dataset(ds, field, train=False, logger='current',
                       check_images=None):
    """Check one CocoDataset-like config dict. Returns a summary dict.

    ``check_images``: None, ``'header'`` or ``'decode'``
    (:func:`check_image_files`)."""
    root = ds.get('data_root') or ''
    if root and not osp.isdir(root):
        raise DatasetError(
            f'{field}.data_root: directory {root} does not exist. Put the '
            'dataset there (docs/train_test.md, "Getting COCO"), or point '
            'data_root elsewhere with --cfg-options.')
    ann_file = _join(root, ds.get('ann_file', ''))
    data = load_coco_json(ann_file, f'{field}.ann_file')

    problems = coco_consistency_problems(data, _config_classes(ds))
    if problems:
        raise DatasetError(
            f'{field}: {ann_file} is inconsistent; correct the file (or '
            'regenerate it) before training:\n  - ' + '\n  - '.join(problems))

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

    if check_images:
        _check_images(data, img_dir, ann_file, field, check_images, logger)

    sizes = {im['id']: (im['width'], im['height']) for im in data['images']}
    classes = _config_classes(ds)
    used_cats = None if classes is None else {
        c['id'] for c in data['categories'] if c['name'] in classes}
    bad = {'zero or negative size': 0, 'under 1 pixel wide or high': 0,
           'zero area': 0, 'NaN or infinite': 0, 'outside the image': 0}
    examples = {}
    annotated = set()
    unused = 0
    for ann in data['annotations']:
        reason = None
        x, y, bw, bh = box = ann['bbox']
        w, h = sizes[ann['image_id']]
        if not all(math.isfinite(v) for v in box):
            reason = 'NaN or infinite'
        elif bw <= 0 or bh <= 0:
            reason = 'zero or negative size'
        elif bw < 1 or bh < 1:
            reason = 'under 1 pixel wide or high'
        elif w and h and (x >= w or y >= h or x + bw <= 0 or y + bh <= 0):
            reason = 'outside the image'
        elif not ann['area'] > 0:
            reason = 'zero area'
        if reason:
            bad[reason] += 1
            examples.setdefault(reason, ann['id'])
        elif used_cats is not None and ann['category_id'] not in used_cats:
            unused += 1
        else:
            annotated.add(ann['image_id'])
    dropped = {k: v for k, v in bad.items() if v}
    if dropped:
        detail = '; '.join(f'{v} {k} (e.g. annotation id {examples[k]})'
                           for k, v in dropped.items())
        print_log(f'{field}: {ann_file}: boxes ignored by mmdet: {detail}.',
                  logger=logger, level=logging.WARNING)
    if unused:
        print_log(f'{field}: {unused} annotations of categories that the '
                  "config's metainfo.classes leave out are not used.",
                  logger=logger, level=logging.INFO)
    empty = len(sizes) - len(annotated)
    if empty:
        filtered = train and ds.get('filter_cfg', {}).get('filter_empty_gt')
        what = 'filtered out for training' if filtered else 'kept'
        print_log(f'{field}: {empty} images without (valid) annotations, '
                  f'{what}.', logger=logger, level=logging.INFO)
    return dict(images=len(sizes), annotations=len(data['annotations']),
                dropped=dropped, empty_images=empty, unused_annotations=unused)


def _check_images(data, img_dir, ann_file, field, mode, logger):
    paths = [osp.join(img_dir, im['file_name']) for im in data['images']]
    sizes = {p: (im['width'], im['height'])
             for p, im in zip(paths, data['images'])}
    start = time.perf_counter()
    unreadable, resized, truncated = check_image_files(paths, sizes, mode)
    print_log(f'{field}: --check-images {mode}: {len(paths)} images read in '
              f'{time.perf_counter() - start:.2f} s.', logger=logger,
              level=logging.INFO)
    if unreadable:
        listed = '\n  '.join(f'{p} ({r})' for p, r in unreadable[:20])
        more = (f'\n  ... and {len(unreadable) - 20} more'
                if len(unreadable) > 20 else '')
        raise DatasetError(
            f'{field}: {len(unreadable)} of the {len(paths)} images listed in '
            f'{ann_file} cannot be read:\n  {listed}{more}\nReplace them or '
            'remove them from the annotation file. (Without --check-images, '
            'training skips such images with a warning; evaluation stops at '
            'them.)')
    if truncated:
        print_log(
            f'{field}: {len(truncated)} JPEGs end without an end-of-image '
            f'marker (first: {_first(truncated, 3)}): probably truncated '
            'copies; they load with the missing part gray. Copy them again.',
            logger=logger, level=logging.WARNING)
    if resized:
        shown = ', '.join(f'{p}: {w}x{h} on disk, {lw}x{lh} listed{note}'
                          for p, (w, h), (lw, lh), note in resized[:3])
        print_log(
            f'{field}: {len(resized)} images differ in size from the width/'
            f'height of {ann_file} (first: {shown}); their boxes may not fit '
            'the pixels. Check the files (images loaded as stored, EXIF '
            'orientation ignored).', logger=logger, level=logging.WARNING)


def check_dataloaders(cfg, splits=('train', 'val', 'test'), logger='current',
                      check_images=None):
    """Check the COCO-style datasets of ``cfg``'s data loaders.

    ``check_images``: None, ``'header'`` or ``'decode'``, as
    :func:`check_coco_dataset`."""
    results, errors = {}, []
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or 'dataset' not in loader:
            continue
        for field, ds in _datasets(loader['dataset'],
                                   f'{split}_dataloader.dataset'):
            if 'ann_file' not in ds:
                continue
            try:
                results[field] = check_coco_dataset(
                    ds, field, train=split == 'train', logger=logger,
                    check_images=check_images)
            except DatasetError as e:  # every dataset's problems at once
                errors.append(str(e))
    if errors:
        raise DatasetError('\n'.join(errors))
    check_image_loading(cfg, logger, train='train' in splits)
    return results


def _loader_transform(ds):
    for t in ds.get('pipeline') or []:
        if str(t.get('type', '')).split('.')[-1].startswith('LoadImageFrom'):
            return t
    return None


def check_image_loading(cfg, logger='current', train=True):
    """Say when the training pipeline stops at an undecodable image (if
    ``train``), and when training and testing load images differently (EXIF
    orientation: ``color_type``)."""
    loads = {}
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader') or {}
        for field, ds in _datasets(loader.get('dataset') or {},
                                   f'{split}_dataloader.dataset'):
            t = _loader_transform(ds)
            if t is not None:
                loads[field] = t
    for field, t in loads.items():
        if train and field.startswith('train') and not str(t['type']).endswith(
                'LoadImageFromFileOrSkip'):
            print_log(
                f'{field}.pipeline loads images with {t["type"]}: an image '
                'that cannot be decoded will stop training. '
                'LoadImageFromFileOrSkip skips it with a warning instead.',
                logger=logger, level=logging.INFO)
    colors = {f: t.get('color_type', 'color') for f, t in loads.items()}
    if len(set(colors.values())) > 1:
        shown = ', '.join(f'{f}: {c!r}' for f, c in colors.items())
        print_log(
            'The pipelines load images with different color_type values '
            f'({shown}): EXIF-rotated images then differ between training '
            "and testing. Use 'color_ignore_orientation' everywhere "
            '(docs/robustness.md).', logger=logger,
            level=logging.WARNING)
