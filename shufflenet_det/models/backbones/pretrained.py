"""Loading ImageNet checkpoints into the project's backbones.

Every backbone here accepts ``init_cfg=dict(type='Pretrained',
checkpoint=PATH)`` pointing at its own layout, at an mmpretrain classifier
(``backbone.`` keys) or at a foreign layout it knows how to convert
(torchvision's, the official releases'): the backbone's ``init_weights``
calls :func:`load_pretrained` with its converters.
"""
from collections import OrderedDict

from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader


class CheckpointMismatchError(ValueError):
    """A checkpoint that does not fit the backbone."""


def unwrap_state_dict(checkpoint):
    """The state dict inside a checkpoint: mmengine's ``state_dict``, some
    releases' ``model``/``state_dict`` wrappers, or the bare dict; with
    ``module.`` (DataParallel) prefixes stripped and, for a classifier
    checkpoint (mmpretrain), only the ``backbone.`` entries kept."""
    state = checkpoint
    for key in ('state_dict', 'model'):
        if isinstance(state, dict) and key in state and isinstance(
                state[key], dict):
            state = state[key]
    state = OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state.items())
    if any(k.startswith('backbone.') for k in state):
        state = OrderedDict((k[len('backbone.'):], v)
                            for k, v in state.items()
                            if k.startswith('backbone.'))
    return state


def load_pretrained(model, checkpoint, converters=(), prefix=None,
                    map_location='cpu', logger='current'):
    """Load ``checkpoint`` (a path or URL) into ``model``.

    Args:
        model (nn.Module): the backbone.
        checkpoint (str): the file.
        converters (Sequence[tuple[str, callable, callable]]): foreign
            layouts as ``(name, detect(state) -> bool, convert(state) ->
            state)``; the first whose ``detect`` accepts the keys converts.
        prefix (str, optional): take only the keys under this prefix (as
            mmengine's ``PretrainedInit``).

    Raises:
        CheckpointMismatchError: no key fits the model, or shapes differ
            (each key is named with both shapes).
    """
    raw = CheckpointLoader.load_checkpoint(checkpoint, map_location)
    state = unwrap_state_dict(raw)
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        state = OrderedDict((k[len(prefix):], v) for k, v in state.items()
                            if k.startswith(prefix))
    layout = 'shufflenet_det'
    for name, detect, convert in converters:
        if detect(state):
            state, layout = convert(state), name
            break

    own = model.state_dict()
    name = type(model).__name__
    common = [k for k in state if k in own]
    if not common:
        known = ', '.join(['shufflenet_det/mmpretrain'] +
                          [c[0] for c in converters])
        sample = ', '.join(list(state)[:3])
        raise CheckpointMismatchError(
            f'{checkpoint}: none of its keys fit {name} (it has e.g. '
            f'{sample}). Layouts {name} reads: {known}. Is it the checkpoint '
            'of another network, or of another width?')
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs model '
                  f'{tuple(own[k].shape)}' for k in common
                  if state[k].shape != own[k].shape]
    if mismatched:
        raise CheckpointMismatchError(
            f'{checkpoint} ({layout} layout) does not fit {name}: '
            f'{len(mismatched)} shape mismatches, e.g. '
            + '; '.join(mismatched[:5]) +
            '. Check the width (widen_factor) or groups of the config.')
    missing = [k for k in own if k not in state
               and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state if k not in own]
    model.load_state_dict(state, strict=False)
    msg = f'Loaded {len(common)} tensors from {checkpoint} ({layout} layout) into {name}.'
    if missing:
        msg += f' Missing in the checkpoint ({len(missing)}): {", ".join(missing[:10])}' + (
            ' ...' if len(missing) > 10 else '') + '.'
    if unexpected:
        msg += f' Unused from the checkpoint ({len(unexpected)}): {", ".join(unexpected[:10])}' + (
            ' ...' if len(unexpected) > 10 else '') + '.'
    print_log(msg, logger=logger, level=30 if missing or unexpected else 20)
    return dict(missing=missing, unexpected=unexpected, layout=layout)


def init_from_pretrained(module, converters=()):
    """``init_weights`` for backbones: load ``module.init_cfg`` when it is a
    ``Pretrained`` init. Returns True when it did."""
    cfg = module.init_cfg
    if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
        load_pretrained(module, cfg['checkpoint'], converters,
                        prefix=cfg.get('prefix'),
                        map_location=cfg.get('map_location', 'cpu'))
        module._is_init = True
        return True
    return False
