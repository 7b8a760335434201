"""Image loading that skips an unreadable image instead of stopping the run.

mmcv's ``LoadImageFromFile(ignore_empty=True)`` returns ``None`` when the
file cannot be read, but not when it is read and cannot be decoded
(``cv2.imdecode`` returns ``None``: it asserts), and it says nothing either
way. :class:`LoadImageFromFileOrSkip` returns ``None`` in both cases, so that
mmengine's ``BaseDataset.__getitem__`` fetches another index in its place
(training only; a test-mode dataset raises), and warns once per file.

Data-loader workers are separate processes, so the record is a file: the
worker that meets an unreadable image appends its path to the file named by
the environment variable :data:`UNREADABLE_IMAGES_ENV`, unless another
process did so first, and warns through mmengine's logger (terminal and the
run's log file). ``tools/train.py`` sets the variable to
``WORK_DIR/unreadable_images.txt`` before it builds the Runner (whose
iteration-based loop starts the workers);
:class:`~shufflenet_det.engine.UnreadableImageHook` logs the count at the end
of every epoch that added to it and at the end of training.

Orientation: OpenCV's ``imdecode`` with mmcv's default ``color_type='color'``
applies a JPEG's EXIF orientation (rotates or mirrors the pixels). COCO's
``width``/``height`` and boxes refer to the pixels as stored, so the
project's configs load with ``color_type='color_ignore_orientation'`` in the
training and the test pipelines alike (mmdet's ``DetInferencer`` passes the
test pipeline's arguments on to its loader).
"""
import logging
import os
import os.path as osp

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log

from mmdet.registry import TRANSFORMS

#: Environment variable naming the file that records skipped images.
UNREADABLE_IMAGES_ENV = 'SHUFFLENET_DET_UNREADABLE_IMAGES'

_warned = set()  # paths this process has warned about


def unreadable_record_path(work_dir):
    """Where a run in ``work_dir`` records the images it skipped."""
    return osp.join(osp.abspath(work_dir), 'unreadable_images.txt')


def read_unreadable_record(record):
    """``{path: reason}`` of a record file (empty if there is none)."""
    if not record or not osp.isfile(record):
        return {}
    with open(record, encoding='utf-8') as f:
        rows = (line.rstrip('\n').split('\t', 1) for line in f if line.strip())
        return {row[0]: row[-1] for row in rows}


def report_unreadable_image(path, reason):
    """Warn about a skipped image once per file, and record it.

    Returns True when this call warned (the first report of ``path`` in the
    record file, or in this process when there is no record file)."""
    if path in _warned:
        return False
    _warned.add(path)
    record = os.environ.get(UNREADABLE_IMAGES_ENV)
    if record:
        try:
            if path in read_unreadable_record(record):
                return False  # another worker, or an earlier run, reported it
            # One short line per write, in append mode: workers do not
            # interleave.
            with open(record, 'a', encoding='utf-8') as f:
                f.write(f'{path}\t{reason}\n')
        except OSError as e:  # the record is a convenience: never stop for it
            reason += f'; not recorded in {record}: {e}'
    print_log(
        f'Skipping unreadable image {path} ({reason}); another image is '
        'used in its place. Replace the file or remove it from the '
        'annotation file (tools/train.py --check-images decode lists every '
        'such image before a run).', logger='current', level=logging.WARNING)
    return True


@TRANSFORMS.register_module()
class LoadImageFromFileOrSkip(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` that returns ``None`` for an image it
    cannot read or decode, after warning once per file.

    Use it in training pipelines, where mmengine's ``BaseDataset`` then
    samples another index (up to ``max_refetch`` times); keep mmcv's
    ``LoadImageFromFile`` in test pipelines, where a missing image must stop
    the evaluation (and where mmdet's ``DetInferencer`` looks for it). The
    arguments are mmcv's; ``ignore_empty`` is implied.

    Example::

        train_pipeline = [
            dict(type='LoadImageFromFileOrSkip',
                 color_type='color_ignore_orientation'),
            dict(type='LoadAnnotations', with_bbox=True), ...]
    """

    def transform(self, results):
        try:
            return super().transform(results)
        except AssertionError:  # mmcv: the bytes did not decode (img is None)
            reason = 'cannot be decoded: corrupt, truncated or not an image'
        except Exception as e:  # noqa: BLE001  (whatever made it unreadable)
            reason = f'{type(e).__name__}: {e}'
        report_unreadable_image(results['img_path'], reason)
        return None
