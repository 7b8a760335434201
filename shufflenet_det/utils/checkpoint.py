"""Loading mmengine checkpoints under torch >= 2.6.

torch 2.6 made ``torch.load(weights_only=True)`` the default. mmengine 0.10.x
calls ``torch.load`` without the argument, and its own checkpoints hold more
than tensors (the message hub's ``HistoryBuffer`` objects, numpy scalars and
arrays in the log history), so ``--resume`` and ``load_from`` fail with an
``UnpicklingError``.

We keep the safe loader and widen it only as far as mmengine needs: the
local-file scheme of mmengine's ``CheckpointLoader`` is replaced by one that
calls ``torch.load(weights_only=True)`` inside ``torch.serialization.safe_globals``
with the few classes mmengine writes. Nothing else in torch changes, and a
checkpoint holding any other object is still refused, with a message that
names the file and the object.

Checkpoints are also written atomically (:class:`AtomicLocalBackend`), and
:func:`find_resumable_checkpoint` picks the newest complete one to resume.
"""
import os
import os.path as osp
import pickle
import re
import tempfile
import zipfile

import numpy as np
import torch
from mmengine.fileio import io as _fileio
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.logging import HistoryBuffer
from mmengine.runner import checkpoint as _mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader


def _numpy_globals():
    """numpy objects that pickled arrays and scalars refer to."""
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = {type(np.dtype(t)) for t in np.sctypeDict.values()}
    return [np.ndarray, np.dtype, _reconstruct, scalar, *dtype_classes]


def _history_buffer_getattr(obj, name):
    """Stands in for ``getattr`` while unpickling.

    A pickled ``HistoryBuffer`` refers to its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``. Allowing the real ``getattr`` would let
    a file reach any attribute of any allowed object, so only that one use is
    answered.
    """
    if obj is HistoryBuffer and name in ('min', 'max', 'current', 'mean'):
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) in a checkpoint')


#: What an mmengine Runner checkpoint may contain besides tensors.
MMENGINE_SAFE_GLOBALS = [
    HistoryBuffer, *_numpy_globals(),
    (_history_buffer_getattr, '__builtin__.getattr'),
    (_history_buffer_getattr, 'builtins.getattr'),
]


def load_checkpoint_file(filename, map_location=None):
    """``torch.load`` a local checkpoint with the weights-only unpickler,
    allowing the objects mmengine itself writes."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        with torch.serialization.safe_globals(MMENGINE_SAFE_GLOBALS):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise _refused(filename, e) from None


def _refused(source, e):
    return pickle.UnpicklingError(
        f'{source} holds objects that the safe (weights-only) loader '
        f'refuses, so shufflenet_det did not load it. If you trust the '
        f'file, re-save only its tensors, e.g. torch.save('
        f"{{'state_dict': torch.load(path, weights_only=False)"
        f"['state_dict']}}, new_path). Details: {e}")


def load_url_weights_only(url, model_dir=None, map_location=None, **kwargs):
    """mmengine's ``load_url`` (``torch.hub.load_state_dict_from_url``) with
    the weights-only unpickler: torch.hub's default is the unrestricted
    one, so every ``http(s)://``, ``torchvision://``, ``open-mmlab://`` and
    ``mmcls://`` checkpoint could run code while loading."""
    from torch.hub import load_state_dict_from_url
    try:
        with torch.serialization.safe_globals(MMENGINE_SAFE_GLOBALS):
            return load_state_dict_from_url(
                url, model_dir=model_dir, map_location=map_location,
                weights_only=True, **kwargs)
    except pickle.UnpicklingError as e:
        raise _refused(url, e) from None


# Replace mmengine's handler of plain local paths (prefix '') and the
# downloader its URL schemes call (looked up in its module at call time).
CheckpointLoader.register_scheme(prefixes='', force=True)(load_checkpoint_file)
_mmengine_checkpoint.load_url = load_url_weights_only


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, writing through a temporary file that
    is renamed over the target once complete.

    A process killed while a checkpoint is being written (SIGKILL, a
    pre-empted job) then leaves the previous file intact and, at worst, a
    stray ``.tmp`` file, never a truncated checkpoint.
    """

    def put(self, obj, filepath):
        filepath = str(filepath)
        os.makedirs(osp.dirname(filepath) or '.', exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=osp.dirname(filepath) or '.',
            prefix=f'.{osp.basename(filepath)}.', suffix='.tmp')
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise

    def put_text(self, obj, filepath, encoding='utf-8'):
        self.put(obj.encode(encoding), filepath)


# Plain paths (prefix '') go through the atomic backend; drop local backend
# instances mmengine may have cached before this module was imported.
register_backend('local', AtomicLocalBackend, force=True, prefixes='')
for _key, _backend in list(_fileio.backend_instances.items()):
    if type(_backend) is LocalBackend:
        del _fileio.backend_instances[_key]


def _checkpoint_is_readable(path):
    """True when ``path`` is a complete torch zip archive."""
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def _progress(path):
    """(iterations, epochs) a checkpoint records, read without loading its
    tensors (memory-mapped); (-1, -1) when it has none."""
    try:
        with torch.serialization.safe_globals(MMENGINE_SAFE_GLOBALS):
            meta = torch.load(path, map_location='cpu', mmap=True,
                              weights_only=True).get('meta', {})
        return int(meta.get('iter', -1)), int(meta.get('epoch', -1))
    except Exception:  # noqa: BLE001  (unreadable: ordered last)
        return -1, -1


def find_resumable_checkpoint(work_dir):
    """The checkpoint ``--resume`` should continue from, or None.

    mmengine reads ``work_dir/last_checkpoint``. That file is written after
    the checkpoint, with a plain ``open('w')``: a kill at the wrong moment
    leaves it empty, and a checkpoint copied or written by other means may be
    truncated. Then the complete ``iter_*.pth`` / ``epoch_*.pth`` in
    ``work_dir`` that records the most iterations is used instead (with
    checkpoints saved inside epochs, ``iter_150.pth`` may be older than
    ``epoch_2.pth``: file names alone do not order them).
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and osp.isfile(named) and _checkpoint_is_readable(named):
            return named
    candidates = []
    for name in os.listdir(work_dir) if osp.isdir(work_dir) else []:
        m = re.fullmatch(r'(iter|epoch)_(\d+)\.pth', name)
        path = osp.join(work_dir, name)
        if m and _checkpoint_is_readable(path):
            candidates.append((_progress(path), int(m.group(2)), path))
    return max(candidates)[2] if candidates else None
