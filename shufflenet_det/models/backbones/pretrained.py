"""Loading ImageNet checkpoints into the project's backbones.

Every backbone here accepts ``init_cfg=dict(type='Pretrained',
checkpoint=PATH)`` pointing at a checkpoint in its own layout, at an
mmpretrain classifier or mmdet detector (``backbone.`` keys), or at a foreign
layout it knows how to convert (torchvision's, the official megvii
releases'): the backbone's ``init_weights`` calls :func:`init_from_pretrained`
with its converters (``converters.py``), which recognises the layout from the
keys and calls :func:`load_pretrained`.
"""
import logging
from collections import OrderedDict

import torch

from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

from ...utils.literal_config import literal_assignments
from .converters import describe_layout


class CheckpointMismatchError(ValueError):
    """A checkpoint that does not fit the backbone."""


class InputMismatchError(ValueError):
    """A detector whose data_preprocessor feeds its pretrained backbone
    another input than the one the weights were trained on."""


#: The input a source trained its ImageNet weights on, in the terms of
#: mmdet's ``DetDataPreprocessor`` (images are loaded BGR, 0-255;
#: ``bgr_to_rgb`` True: the network sees RGB; then ``(x - mean) / std``).
#: torchvision: ``ToTensor()`` + ``Normalize`` with the ImageNet statistics
#: (its ``IMAGENET1K_V1`` transforms); mmpretrain and this project's
#: pretraining (configs/pretrain/): the same figures on 0-255 RGB.
IMAGENET_RGB = dict(mean=(123.675, 116.28, 103.53),
                    std=(58.395, 57.12, 57.375), bgr_to_rgb=True)
#: megvii-model/ShuffleNet-Series (ShuffleNetV1/train.py, ``ToBGRTensor``):
#: BGR pixels in 0-255, no mean or std.
RAW_BGR = dict(mean=(0., 0., 0.), std=(1., 1., 1.), bgr_to_rgb=False)
#: layout name (as the converters call it) -> the input of its weights
LAYOUT_INPUTS = {'torchvision': IMAGENET_RGB, 'megvii': RAW_BGR,
                 'mmpretrain': IMAGENET_RGB}


def _input_from_cfg(cfg_text):
    """The input an mmengine run trained on, from the config text it saved
    in its checkpoint's ``meta['cfg']``; None when it cannot be read.

    The text is parsed as data (:func:`literal_assignments`), never run: a
    ``.py`` config is Python, and ``Config.fromstring`` would execute
    whatever a downloaded checkpoint put there. A value that is not a
    literal counts as "the file does not say"."""
    try:
        found = literal_assignments(cfg_text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # not Python, a null byte, nested beyond what the parser takes
        return None

    def literal_dict(value):
        return value if isinstance(value, dict) else None

    model = literal_dict(found.get('model')) or {}
    # mmengine configs: data_preprocessor; mmcv 1.x (mmcls 0.x) configs:
    # img_norm_cfg, the Normalize step of their pipelines.
    pre = (literal_dict(found.get('data_preprocessor'))
           or literal_dict(model.get('data_preprocessor'))
           or literal_dict(found.get('img_norm_cfg')))
    if pre is None:
        return None
    # mmpretrain's ClsDataPreprocessor says to_rgb, mmdet's bgr_to_rgb;
    # both leave the pixels as they are when no mean/std is given.
    mean, std = pre.get('mean'), pre.get('std')
    to_rgb = pre.get('to_rgb', pre.get('bgr_to_rgb', False))
    try:
        mean = (0., 0., 0.) if mean is None else tuple(float(v) for v in mean)
        std = (1., 1., 1.) if std is None else tuple(float(v) for v in std)
    except (TypeError, ValueError):  # a number in another form
        return None
    if not isinstance(to_rgb, bool):
        return None
    return dict(mean=mean, std=std, bgr_to_rgb=to_rgb)


def checkpoint_input(raw, layout):
    """The input the weights of a loaded checkpoint were trained on
    (a dict as :data:`IMAGENET_RGB`), or None when the file does not say.

    A foreign layout says it by being that layout (:data:`LAYOUT_INPUTS`);
    a file written by ``tools/model_converters/`` keeps its source's name in
    ``meta['layout']``; a checkpoint of an mmengine run (``tools/pretrain.py``,
    mmpretrain) has its config, and so its ``data_preprocessor``, in
    ``meta['cfg']``.
    """
    if layout in LAYOUT_INPUTS:
        return dict(LAYOUT_INPUTS[layout], source=f'{layout} layout')
    meta = raw.get('meta') if isinstance(raw, dict) else None
    if not isinstance(meta, dict):
        return None
    if meta.get('layout') in LAYOUT_INPUTS:
        return dict(LAYOUT_INPUTS[meta['layout']],
                    source=f'converted from the {meta["layout"]} layout')
    # mmengine runs save their config as meta['cfg'], mmcv 1.x releases as
    # meta['config'].
    text = meta.get('cfg') or meta.get('config')
    if isinstance(text, str):
        found = _input_from_cfg(text)
        if found is not None:
            return dict(found,
                        source='the data_preprocessor of its training config')
    return None


def _fmt(values):
    return '[' + ', '.join(f'{v:g}' for v in values) + ']'


def check_pretrained_input(backbone, data_preprocessor):
    """Stop a detector that would feed its pretrained backbone another input
    than its weights were trained on (channel order, pixel range, mean, std):
    such a run trains, and only its mAP is lower.

    ``backbone.pretrained_input`` is set by :func:`init_from_pretrained`
    (None or absent: the checkpoint does not say, nothing is checked).
    ``data_preprocessor`` is mmdet's ``DetDataPreprocessor`` (or any
    ``ImgDataPreprocessor``).

    Raises:
        InputMismatchError: naming the checkpoint, what its weights expect,
            what the config feeds, and the ``model.data_preprocessor``
            settings that fix it.
    """
    want = getattr(backbone, 'pretrained_input', None)
    if want is None or data_preprocessor is None or not hasattr(
            data_preprocessor, '_channel_conversion'):
        return
    if getattr(data_preprocessor, '_enable_normalize', False):
        mean = data_preprocessor.mean.flatten().tolist()
        std = data_preprocessor.std.flatten().tolist()
    else:
        mean, std = [0., 0., 0.], [1., 1., 1.]
    rgb = bool(data_preprocessor._channel_conversion)
    same = (rgb == want['bgr_to_rgb']
            and torch.allclose(torch.tensor(mean), torch.tensor(want['mean']),
                               atol=1e-3)
            and torch.allclose(torch.tensor(std), torch.tensor(want['std']),
                               atol=1e-3))
    if same:
        return

    def says(m, s, to_rgb):
        order = 'RGB' if to_rgb else 'BGR'
        if all(v == 0 for v in m) and all(v == 1 for v in s):
            return f'{order} pixels in 0-255 without mean/std'
        return f'{order} pixels, mean {_fmt(m)}, std {_fmt(s)}'

    raise InputMismatchError(
        f'{type(backbone).__name__} loads {want.get("checkpoint", "its checkpoint")} '
        f'({want.get("source", "?")}), whose weights were trained on '
        f'{says(want["mean"], want["std"], want["bgr_to_rgb"])}, but '
        f'model.data_preprocessor feeds {says(mean, std, rgb)}. Set '
        f'model.data_preprocessor: mean={_fmt(want["mean"])}, '
        f'std={_fmt(want["std"])}, bgr_to_rgb={want["bgr_to_rgb"]} (as '
        'checkpoints/README.md lists per source), or use weights trained on '
        'the input the config gives.')


def _strip(state, prefix):
    return OrderedDict((k[len(prefix):] if k.startswith(prefix) else k, v)
                       for k, v in state.items())


def unwrap_state_dict(checkpoint, prefix=None):
    """The backbone's state dict inside a loaded checkpoint.

    Takes the dict out of the usual wrappers (mmengine's ``state_dict``,
    some releases' ``model``) or uses a bare dict, strips ``module.``
    (DataParallel) prefixes and keeps only the entries under ``prefix``,
    with the prefix removed; without a prefix, a classifier (mmpretrain) or
    detector (mmdet) checkpoint keeps its ``backbone.`` entries (``head.``,
    ``neck.`` ... are dropped).
    """
    state = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise CheckpointMismatchError(
            f'expected a state dict in the checkpoint, got {type(state)}')
    state = _strip(state, 'module.')
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        if not any(k.startswith(prefix) for k in state):
            raise CheckpointMismatchError(
                f'no key of the checkpoint starts with prefix {prefix!r}')
    elif any(k.startswith('backbone.') for k in state):
        prefix = 'backbone.'
    if prefix:
        state = OrderedDict((k[len(prefix):], v) for k, v in state.items()
                            if k.startswith(prefix))
    return state


def find_converter(state, converters):
    """The first ``(name, detect, convert)`` of ``converters`` whose
    ``detect(state)`` recognises the keys, or None (our own layout)."""
    for entry in converters:
        if entry[1](state):
            return entry
    return None


def _key_list(keys, limit=10):
    keys = list(keys)
    more = f' ... ({len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def load_pretrained(model, checkpoint, convert=None, map_location='cpu',
                    logger='current', prefix=None):
    """Load an ImageNet checkpoint file into a backbone.

    The file is read with mmengine's ``CheckpointLoader`` (so paths, URLs and
    ``torchvision://``-style schemes work, with the torch >= 2.6 loader of
    :mod:`shufflenet_det.utils.checkpoint`), its state dict is unwrapped
    (:func:`unwrap_state_dict`), converted, checked against
    ``model.state_dict()`` and loaded with ``strict=False``.

    Args:
        model (nn.Module): the backbone.
        checkpoint (str): path or URL of the checkpoint.
        convert (callable | Sequence[tuple], optional): how to bring a
            foreign layout to the model's: a function ``state -> state``, or
            a sequence of ``(name, detect(state) -> bool, convert)`` entries
            of which the first that recognises the keys is applied (see
            ``converters.py``). None: the checkpoint is in the model's own
            layout already. Default: None.
        map_location (str): where tensors are loaded. Default: 'cpu'.
        logger (str | Logger): where the report goes (mmengine
            ``print_log``). Default: 'current'.
        prefix (str, optional): take only the keys under this prefix, with
            the prefix removed, as mmengine's ``PretrainedInit`` does (e.g.
            ``'backbone.'`` of a detector). Default: None.

    Returns:
        dict: ``missing`` and ``unexpected`` keys, the ``layout`` name and
        ``input``, the input the weights were trained on
        (:func:`checkpoint_input`; None when the file does not say).

    Raises:
        CheckpointMismatchError (a ValueError): no key of the checkpoint fits
            the model (the message names the file, the model class and the
            layouts it reads), or some shapes differ (each key is named with
            both shapes).
    """
    raw = CheckpointLoader.load_checkpoint(checkpoint, map_location)
    try:
        state = unwrap_state_dict(raw, prefix)
    except CheckpointMismatchError as e:
        raise CheckpointMismatchError(f'{checkpoint}: {e}') from None

    layout, known = 'own', []
    if callable(convert):
        layout = getattr(convert, '__name__', 'converted')
        state = convert(state)
    elif convert:
        known = [entry[0] for entry in convert]
        found = find_converter(state, convert)
        if found is not None:
            layout = found[0]
            state = found[2](state)

    own = model.state_dict()
    name = type(model).__name__
    common = [k for k in state if k in own]
    if not common:
        reads = ', '.join([f'its own (as {name}.state_dict(), or an '
                           'mmpretrain/mmdet checkpoint with "backbone." '
                           'keys)'] + known)
        guess = describe_layout(state)
        guess = f' It looks like {guess} checkpoint.' if guess else ''
        raise CheckpointMismatchError(
            f'{checkpoint}: none of its {len(state)} keys fit {name} (it has '
            f'e.g. {_key_list(state, 3)}; {name} has e.g. '
            f'{_key_list(own, 3)}).{guess} {name} reads these layouts: '
            f'{reads}. Is it the checkpoint of another network, or one that '
            'tools/model_converters/ must convert first?')
    mismatched = [
        f'{k}: checkpoint {tuple(state[k].shape)} vs model '
        f'{tuple(own[k].shape)}' for k in common
        if state[k].shape != own[k].shape
    ]
    if mismatched:
        raise CheckpointMismatchError(
            f'{checkpoint} ({layout} layout) does not fit {name}: '
            f'{len(mismatched)} shape mismatch(es): ' +
            '; '.join(mismatched) +
            '. Is the width (widen_factor) or groups of the config the one '
            'the checkpoint was trained with?')
    missing = [k for k in own if k not in state
               and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state if k not in own]
    model.load_state_dict(state, strict=False)
    found_input = checkpoint_input(raw, layout)
    if found_input is not None:
        found_input['checkpoint'] = str(checkpoint)
    msg = (f'Loaded {len(common)} tensors from {checkpoint} ({layout} '
           f'layout) into {name}.')
    if missing:
        msg += (f'\nMissing in the checkpoint, left as initialised '
                f'({len(missing)}): {_key_list(missing)}')
    if unexpected:
        msg += (f'\nIn the checkpoint but not in {name}, ignored '
                f'({len(unexpected)}): {_key_list(unexpected)}')
    level = logging.WARNING if missing or unexpected else logging.INFO
    print_log(msg, logger=logger, level=level)
    return dict(missing=missing, unexpected=unexpected, layout=layout,
                input=found_input)


def split_init_cfg(init_cfg):
    """``(pretrained, others)``: the ``Pretrained`` entry of ``init_cfg``
    (a dict or, as mmengine allows, a list of dicts; None when there is
    none) and the other entries, in order."""
    entries = init_cfg if isinstance(init_cfg, (list, tuple)) else \
        [init_cfg] if init_cfg is not None else []
    pretrained = [c for c in entries
                  if isinstance(c, dict) and c.get('type') == 'Pretrained']
    if len(pretrained) > 1:
        raise ValueError(
            f'init_cfg has {len(pretrained)} Pretrained entries '
            f'({[c.get("checkpoint") for c in pretrained]}): keep one.')
    others = [c for c in entries if not any(c is p for p in pretrained)]
    return (pretrained[0] if pretrained else None), others


def init_from_pretrained(module, converters=(), before_load=None):
    """The ``Pretrained`` branch of a backbone's ``init_weights``.

    When ``module.init_cfg`` is ``dict(type='Pretrained', checkpoint=...,
    prefix=None, map_location='cpu')``, or a list holding one such entry,
    applies the list's other entries first (mmengine's order: the
    checkpoint last), then loads the checkpoint with :func:`load_pretrained`,
    recognising the layout among ``converters``, and returns True;
    otherwise returns False and does nothing. ``before_load()`` runs just
    before the checkpoint is read (for what a checkpoint may lack, as
    ShuffleNet V2*'s extra depthwise convs).
    """
    cfg, others = split_init_cfg(module.init_cfg)
    if cfg is None:
        return False
    if others:
        from mmengine.model import initialize
        initialize(module, others)
    if before_load is not None:
        before_load()
    result = load_pretrained(module, cfg['checkpoint'], convert=converters,
                             map_location=cfg.get('map_location', 'cpu'),
                             prefix=cfg.get('prefix'))
    module.pretrained_input = result['input']
    module._is_init = True
    return True


def convert_checkpoint(src, dst, converters):
    """Convert the checkpoint file ``src`` to our layout and save it to
    ``dst`` (``dict(state_dict=..., meta=...)``), for the command-line tools
    of ``tools/model_converters/``.

    Args:
        src (str): the original checkpoint (path or URL).
        dst (str): where to write the converted one.
        converters (Sequence[tuple]): ``(name, detect, convert)`` entries
            (``converters.py``); the first that recognises ``src`` converts.

    Returns:
        tuple[str, int]: the layout's name and the number of tensors saved.

    Raises:
        ValueError: no converter recognises ``src``, or its converter refuses
            it (the message says why).
    """
    import torch  # only needed here

    state = unwrap_state_dict(CheckpointLoader.load_checkpoint(src, 'cpu'))
    found = find_converter(state, converters)
    if found is None:
        guess = describe_layout(state)
        raise CheckpointMismatchError(
            f'{src}: not a layout this tool converts (it reads: '
            f'{", ".join(c[0] for c in converters)}).' +
            (f' It looks like {guess} checkpoint.' if guess else ''))
    name, _, convert = found
    state = convert(state)
    # meta['layout'] is the source's key in LAYOUT_INPUTS ('megvii' of
    # 'megvii ShuffleNet V1'), so that the file states the input it needs.
    torch.save(dict(state_dict=state,
                    meta=dict(converted_from=str(src), format=name,
                              layout=name.split()[0])), dst)
    return name, len(state)
