"""Key conversions from public ImageNet checkpoints to the project's layout.

Each converter is ``(name, detect(state) -> bool, convert(state) -> state)``
and works on a plain state dict (after :func:`pretrained.unwrap_state_dict`).
The backbones use them at load time; ``tools/model_converters/`` wraps them
as command-line tools that write converted files.
"""
import re
from collections import OrderedDict

_BN = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')


def _rename(state, rules, drop=()):
    """Apply the first matching ``(regex, replacement)`` to every key; keys
    matching a ``drop`` regex (classifier heads) are left out; a key no rule
    matches is kept as it is (and reported as unexpected by the loader)."""
    out = OrderedDict()
    for key, value in state.items():
        if any(re.match(d, key) for d in drop):
            continue
        for pattern, repl in rules:
            new, n = re.subn(pattern, repl, key)
            if n:
                key = new
                break
        out[key] = value
    return out


def _conv_bn(prefix_in, conv_idx, prefix_out):
    """Rules for an ``nn.Sequential`` conv at ``conv_idx`` followed by its BN
    at ``conv_idx + 1`` -> a ConvModule at ``prefix_out``."""
    return [
        (rf'^{prefix_in}\.{conv_idx}\.weight$', rf'{prefix_out}.conv.weight'),
        (rf'^{prefix_in}\.{conv_idx + 1}\.({"|".join(_BN)})$',
         rf'{prefix_out}.bn.\1'),
    ]


# ---------------------------------------------------------------- ShuffleNet V2
def is_torchvision_shufflenet_v2(state):
    return 'conv1.0.weight' in state and any(
        k.startswith('stage2.') for k in state)


def torchvision_shufflenet_v2(state):
    """torchvision ``shufflenet_v2_x*`` -> :class:`ShuffleNetV2`.

    torchvision's unit has the same operations in the same order, with
    conv and BN as separate Sequential entries (ReLU entries hold no
    weights): branch1 = [dw, bn, pw, bn, relu], branch2 = [pw, bn, relu, dw,
    bn, pw, bn, relu]; stages are ``stage2..4`` and the last conv ``conv5``.
    """
    unit = r'stage(\d)\.(\d+)'
    rules = _conv_bn('conv1', 0, 'conv1') + _conv_bn('conv5', 0, 'layers.3')
    rules = [(p, r) for p, r in rules]
    out = OrderedDict()
    for key, value in _rename(state, rules, drop=(r'^fc\.', )).items():
        m = re.match(rf'^{unit}\.(branch[12])\.(\d+)\.(\w+)$', key)
        if m:
            stage, idx, branch, pos, param = m.groups()
            pos = int(pos)
            # Sequential index -> (ConvModule index, conv or bn).
            table = ({0: (0, 'conv'), 1: (0, 'bn'), 2: (1, 'conv'),
                      3: (1, 'bn')} if branch == 'branch1' else
                     {0: (0, 'conv'), 1: (0, 'bn'), 3: (1, 'conv'),
                      4: (1, 'bn'), 5: (2, 'conv'), 6: (2, 'bn')})
            module, kind = table[pos]
            key = (f'layers.{int(stage) - 2}.{idx}.{branch}.{module}.'
                   f'{kind}.{param}')
        out[key] = value
    return out


SHUFFLENET_V2_CONVERTERS = [
    ('torchvision', is_torchvision_shufflenet_v2, torchvision_shufflenet_v2),
]
