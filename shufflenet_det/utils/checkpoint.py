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
"""
import os.path as osp
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
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
    supports_weights_only = hasattr(torch.serialization, 'safe_globals')
    if not supports_weights_only:  # torch < 2.4: nothing to do
        return torch.load(filename, map_location=map_location)
    try:
        with torch.serialization.safe_globals(MMENGINE_SAFE_GLOBALS):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(
            f'{filename} holds objects that the safe (weights-only) loader '
            f'refuses, so shufflenet_det did not load it. If you trust the '
            f'file, re-save only its tensors, e.g. torch.save('
            f"{{'state_dict': torch.load(path, weights_only=False)"
            f"['state_dict']}}, new_path). Details: {e}") from None


# Replace mmengine's handler of plain local paths (prefix '').
CheckpointLoader.register_scheme(prefixes='', force=True)(load_checkpoint_file)
