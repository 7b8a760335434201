"""Key conversions from public ImageNet checkpoints to the project's layout.

A converter entry is ``(name, detect(state) -> bool, convert(state) ->
state)`` on a plain state dict (after :func:`.pretrained.unwrap_state_dict`).
Each backbone lists the foreign layouts it reads (``*_CONVERTERS``); its
``init_weights`` picks the entry whose ``detect`` recognises the keys, so
``init_cfg=dict(type='Pretrained', checkpoint=...)`` may point at the
original file. ``tools/model_converters/`` wraps the same functions as
command-line tools that write converted files (:func:`convert_command`).
MobileNet V2's layouts are converted in ``mobilenet_v2.py``, next to the
block table they read.

Layouts that need no conversion: ours, which is mmpretrain's for ShuffleNet
V1 and V2 (``conv1``, ``layers.i.j...``; mmpretrain classifier and mmdet
detector checkpoints lose their ``backbone.`` prefix when unwrapped).
"""
import argparse
import re
from collections import OrderedDict, defaultdict

import torch

_BN = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')


def _conv_bn_key(seq_index, conv_index, module):
    """The ConvModule key of entry ``seq_index`` of a torch ``Sequential``
    whose conv sits at ``conv_index`` and its BN at ``conv_index + 1``."""
    return f'{module}.{"conv" if seq_index == conv_index else "bn"}'


# --------------------------------------------------------------- ShuffleNet V2
def is_torchvision_shufflenet_v2(state):
    """torchvision ``shufflenet_v2_x*``: ``conv1.0``, ``stage2..4``,
    ``conv5.0``, ``fc``."""
    return 'conv1.0.weight' in state and 'stage2.0.branch2.0.weight' in state


def torchvision_to_shufflenet_v2(state):
    """torchvision ``shufflenet_v2_x*`` -> :class:`ShuffleNetV2`.

    torchvision's unit computes the same operations in the same order and
    the same channel order (``cat`` then ``channel_shuffle(., 2)``), with
    convs and BNs as separate ``Sequential`` entries (ReLUs hold no weights):
    ``branch1 = [dw, bn, pw, bn, relu]``, ``branch2 = [pw, bn, relu, dw, bn,
    pw, bn, relu]``. Only the keys change; ``fc`` is dropped. Outputs are
    equal to torchvision's (stage2/3/4 and conv5).
    """
    # Sequential index -> ConvModule key, per branch.
    branch_keys = {
        'branch1': {0: '0.conv', 1: '0.bn', 2: '1.conv', 3: '1.bn'},
        'branch2': {0: '0.conv', 1: '0.bn', 3: '1.conv', 4: '1.bn',
                    5: '2.conv', 6: '2.bn'},
    }
    out = OrderedDict()
    for key, value in state.items():
        if key.startswith('fc.'):
            continue
        m = re.match(r'^(conv1|conv5)\.(\d)\.(\w+)$', key)
        if m:
            name = 'conv1' if m.group(1) == 'conv1' else 'layers.3'
            key = f'{_conv_bn_key(int(m.group(2)), 0, name)}.{m.group(3)}'
        m = re.match(r'^stage(\d)\.(\d+)\.(branch[12])\.(\d)\.(\w+)$', key)
        if m:
            stage, unit, branch, index, param = m.groups()
            key = (f'layers.{int(stage) - 2}.{unit}.{branch}.'
                   f'{branch_keys[branch][int(index)]}.{param}')
        out[key] = value
    return out


def is_megvii_shufflenet_v2(state):
    """Official megvii-model/ShuffleNet-Series ShuffleNetV2: ``first_conv``,
    ``features.N.branch_main`` / ``branch_proj``, ``conv_last``."""
    return 'first_conv.0.weight' in state and any(
        '.branch_main.' in k for k in state)


def megvii_to_shufflenet_v2(state):
    """Official megvii ShuffleNetV2: refused, with the reason.

    That release is not the same network as torchvision's and mmpretrain's
    (and ours), so no renaming can load it:

    - the stride-2 unit of stage 2 is built with ``inp=24``: its shortcut
      branch (``branch_proj``) keeps 24 channels and its main branch gives
      ``stage2 - 24`` (e.g. 24 + 92 = 116 at 1x), where ours gives half and
      half (58 + 58); stage 3 and 4 match (``inp = out / 2``);
    - its units do not end with "concat, shuffle": a stride-1 unit starts by
      taking the even input channels as the identity half and the odd ones
      as the branch input (``channel_shuffle`` there), and ends with a plain
      concat. That alone is a reordering of channels that converted weights
      could absorb (permuting each unit's 1x1 convs), but the first point
      is not.

    Use torchvision's ImageNet ShuffleNet V2 weights (all four widths), which
    load directly.
    """
    first = state.get('features.0.branch_proj.3.weight')
    detail = ''
    if first is not None:
        detail = (f' (this file: stage-2 shortcut branch of '
                  f'{first.shape[0]} channels)')
    raise ValueError(
        'official megvii ShuffleNetV2 checkpoints cannot be converted: the '
        'first unit of stage 2 has different branch widths (shortcut keeps '
        f'the 24 input channels){detail}, see '
        'converters.megvii_to_shufflenet_v2. Use torchvision\'s '
        'shufflenet_v2_x* ImageNet weights instead: they load directly.')


SHUFFLENET_V2_CONVERTERS = [
    ('torchvision', is_torchvision_shufflenet_v2, torchvision_to_shufflenet_v2),
    ('megvii', is_megvii_shufflenet_v2, megvii_to_shufflenet_v2),
]


# --------------------------------------------------------------- ShuffleNet V1
def is_megvii_shufflenet_v1(state):
    """Official megvii-model/ShuffleNet-Series ShuffleNetV1: ``first_conv``,
    ``features.N.branch_main_1`` / ``branch_main_2``, ``classifier``."""
    return 'first_conv.0.weight' in state and any(
        '.branch_main_1.' in k for k in state)


def _shuffle_positions(channels, groups, official):
    """Where each channel goes in a channel shuffle with ``groups`` groups.

    Ours (:func:`.shufflenet_v2.channel_shuffle`, ShuffleNet V1 Sec. 3.1,
    mmpretrain, torchvision) sends channel ``j * n + i`` to ``i * g + j``
    (``n = channels / g``). The official V1 release reshapes to ``(n, g)``
    instead of ``(g, n)``: channel ``j * g + i`` goes to ``i * n + j``, the
    inverse permutation.
    """
    g, n = groups, channels // groups
    pos = [0] * channels
    for i in range(n if not official else g):
        for j in range(g if not official else n):
            src = j * n + i if not official else j * g + i
            pos[src] = i * g + j if not official else i * n + j
    return pos


def v1_unit_permutation(mid_channels, groups, grouped_compress=True):
    """Match the channels of an official V1 unit's bottleneck to ours.

    Between the compress and the expand 1x1 group convs the official unit
    shuffles with the inverse of our shuffle. A bottleneck channel is
    characterised by its compress group (which input group it reads) and by
    the expand group it is shuffled into; both shuffles send ``n / g``
    channels (rounded the same way) of each compress group to each expand
    group, so the official channels can be given to ours class by class.

    Returns:
        tuple[list[int], list[int], list[int]]: ``src``: our bottleneck
        channel ``t`` takes official channel ``src[t]`` (compress rows,
        depthwise conv, BNs); ``pos`` and ``official_pos``: where channel
        ``t`` (ours) and ``src[t]`` (official) land after the shuffle, which
        gives the expand conv's input column within its group.
    """
    n = mid_channels // groups
    pos = _shuffle_positions(mid_channels, groups, official=False)
    official_pos = _shuffle_positions(mid_channels, groups, official=True)

    def cls(ch, position):
        return (ch // n if grouped_compress else 0, position // n)

    pool = defaultdict(list)
    for u in range(mid_channels):
        pool[cls(u, official_pos[u])].append(u)
    src = []
    for t in range(mid_channels):
        bucket = pool[cls(t, pos[t])]
        if not bucket:  # the shuffles connect other pairs of groups
            raise ValueError(
                f'the official channel shuffle of {mid_channels} channels in '
                f'{groups} groups ({n} per group) connects other pairs of '
                'groups than ours: no '
                'reordering of the weights gives the same network. Every '
                'g = 3 model converts (the ShuffleNet V2 paper compares '
                'with g = 3); of the official g = 8 models only 2.0x does')
        src.append(bucket.pop(0))
    return src, pos, official_pos


def _permute_v1_unit(out, prefix, groups, grouped_compress):
    """Reorder the converted weights of one V1 unit (keys of ``out`` under
    ``prefix``) in place, see :func:`v1_unit_permutation`."""
    compress = f'{prefix}.g_conv_1x1_compress'
    dw = f'{prefix}.depthwise_conv3x3_bn'
    expand_w = f'{prefix}.g_conv_1x1_expand.conv.weight'
    mid = out[f'{compress}.conv.weight'].shape[0]
    try:
        src, pos, official_pos = v1_unit_permutation(mid, groups,
                                                     grouped_compress)
    except ValueError as e:
        raise ValueError(f'official ShuffleNetV1, unit {prefix}: {e}') \
            from None
    index = torch.tensor(src)
    for key in [f'{compress}.conv.weight', f'{dw}.conv.weight'] + [
            f'{m}.bn.{p}' for m in (compress, dw) for p in _BN[:4]]:
        if key in out:
            out[key] = out[key][index]
    n = mid // groups
    old = out[expand_w]  # (out, n, 1, 1), rows in `groups` groups
    rows = old.shape[0] // groups
    new = torch.empty_like(old)
    for t, u in enumerate(src):
        k = pos[t] // n  # the expand group (same for both by construction)
        new[k * rows:(k + 1) * rows, pos[t] % n] = \
            old[k * rows:(k + 1) * rows, official_pos[u] % n]
    out[expand_w] = new


def megvii_to_shufflenet_v1(state, groups=None):
    """Official megvii-model/ShuffleNet-Series ShuffleNetV1 -> ours.

    Official unit ``features.N`` (16 units in one list, 4/8/4 per stage):
    ``branch_main_1 = [compress 1x1 group conv, BN, ReLU, 3x3 dw conv, BN]``,
    ``branch_main_2 = [expand 1x1 group conv, BN]``, shuffle between the
    two; stem ``first_conv = [conv, BN, ReLU]``; ``classifier`` is dropped.

    Its shuffle is the inverse of ours (see :func:`_shuffle_positions`), so
    besides renaming, the bottleneck channels of every unit are reordered
    (compress rows, depthwise conv, BNs, expand input columns) to compute
    exactly the same function: the stage outputs equal the official ones.

    Args:
        state (dict): the official state dict (``module.`` stripped).
        groups (int, optional): the model's groups; None reads it from the
            weights (the expand conv of the first unit).
    """
    if groups is None:
        groups = _v1_groups(state)
    starts = (0, 4, 12)  # first unit of stage2/3/4 in `features`
    table = {('branch_main_1', 0): 'g_conv_1x1_compress.conv',
             ('branch_main_1', 1): 'g_conv_1x1_compress.bn',
             ('branch_main_1', 3): 'depthwise_conv3x3_bn.conv',
             ('branch_main_1', 4): 'depthwise_conv3x3_bn.bn',
             ('branch_main_2', 0): 'g_conv_1x1_expand.conv',
             ('branch_main_2', 1): 'g_conv_1x1_expand.bn'}
    out = OrderedDict()
    units = {}
    for key, value in state.items():
        if key.startswith('classifier.'):
            continue
        m = re.match(r'^first_conv\.(\d)\.(\w+)$', key)
        if m:
            key = f'{_conv_bn_key(int(m.group(1)), 0, "conv1")}.{m.group(2)}'
        m = re.match(
            r'^features\.(\d+)\.(branch_main_[12])\.(\d)\.(\w+)$', key)
        if m:
            index, branch, seq, param = m.groups()
            index = int(index)
            stage = sum(index >= s for s in starts) - 1
            prefix = f'layers.{stage}.{index - starts[stage]}'
            units[prefix] = index
            key = f'{prefix}.{table[(branch, int(seq))]}.{param}'
        out[key] = value
    if groups > 1:
        for prefix, index in units.items():
            _permute_v1_unit(out, prefix, groups, grouped_compress=index > 0)
    return out


def _v1_groups(state):
    """The groups of an official V1 checkpoint: its second unit's expand
    conv has ``mid / groups`` input channels per group."""
    mid = state['features.1.branch_main_1.0.weight'].shape[0]
    per_group = state['features.1.branch_main_2.0.weight'].shape[1]
    return mid // per_group


SHUFFLENET_V1_CONVERTERS = [
    ('megvii', is_megvii_shufflenet_v1, megvii_to_shufflenet_v1),
]


# ------------------------------------------------- recognising any checkpoint
def describe_layout(state):
    """A short guess of what network a state dict belongs to, for error
    messages (None when unknown)."""
    keys = set(state)
    if is_torchvision_shufflenet_v2(state):
        return 'a torchvision ShuffleNet V2'
    if is_megvii_shufflenet_v2(state):
        return 'an official megvii ShuffleNet V2'
    if is_megvii_shufflenet_v1(state):
        return 'an official megvii ShuffleNet V1'
    if 'layer1.0.conv1.weight' in keys:
        return 'a ResNet'
    if any('.g_conv_1x1_compress.' in k for k in keys):
        return 'a ShuffleNet V1 (ours/mmpretrain)'
    if any('.branch2.' in k for k in keys):
        return 'a ShuffleNet V2 (ours/mmpretrain)'
    if 'features.0.0.weight' in keys:
        return 'a torchvision MobileNet'
    return None


# ------------------------------------------------------------- the tools'
#: what tools/model_converters/megvii2shufflenet.py reads (V2: to refuse it
#: with the reason)
MEGVII_SHUFFLENET_CONVERTERS = [
    ('megvii ShuffleNet V1', is_megvii_shufflenet_v1, megvii_to_shufflenet_v1),
    ('megvii ShuffleNet V2', is_megvii_shufflenet_v2, megvii_to_shufflenet_v2),
]
#: what tools/model_converters/torchvision2shufflenet.py reads
TORCHVISION_SHUFFLENET_CONVERTERS = [
    ('torchvision ShuffleNet V2', is_torchvision_shufflenet_v2,
     torchvision_to_shufflenet_v2),
]


def converter_parser(doc, source):
    """The command line of a ``tools/model_converters/`` tool: ``SRC DST``.

    Args:
        doc (str): the tool's docstring; its first paragraph is the
            description.
        source (str): what SRC is, for the help.
    """
    parser = argparse.ArgumentParser(description=doc.split('\n\n')[0])
    parser.add_argument('src', help=source)
    parser.add_argument('dst', help='where to save the converted checkpoint')
    return parser


def convert_command(src, dst, converters):
    """Convert the checkpoint ``src`` into ``dst`` as a tool does: print
    ``SRC (LAYOUT) -> DST: N tensors`` and return None, or return the
    reason it cannot (``error: ...``), for ``sys.exit``.

    Args:
        src (str): the original checkpoint (path or URL).
        dst (str): where to write the converted one.
        converters (Sequence[tuple]): ``(name, detect, convert)`` entries;
            the first that recognises ``src`` converts, its name is printed
            and saved as ``meta['layout']``.
    """
    from .pretrained import convert_checkpoint  # it imports this module
    try:
        layout, n = convert_checkpoint(src, dst, converters)
    except ValueError as e:
        return f'error: {e}'
    print(f'{src} ({layout}) -> {dst}: {n} tensors')
    return None
