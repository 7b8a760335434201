"""The official megvii-model/ShuffleNet-Series ShuffleNetV1, written out
from its definition (``ShuffleNetV1/network.py``, ``blocks.py``) and its
training input (``train.py``), as the independent reference the converter
and the Table 7 route tests compare with."""
import numpy as np
import torch
import torch.nn.functional as F


def to_bgr_tensor(rgb):
    """``ToBGRTensor`` of the official train.py: an RGB image (H, W, 3,
    uint8, as PIL gives it) -> a (3, H, W) float BGR tensor in 0-255, no mean
    or std."""
    img = np.ascontiguousarray(np.transpose(rgb[:, :, ::-1], (2, 0, 1)))
    return torch.from_numpy(img).float()


def official_state(model, seed=0):
    """A state dict in the official layout (megvii ShuffleNet-Series
    ShuffleNetV1: ``first_conv``, ``features.N.branch_main_1/2``,
    ``classifier``) with random weights of ``model``'s shapes."""
    g = torch.Generator().manual_seed(seed)
    state = {}

    def conv(key, like):
        w = torch.randn(like.shape, generator=g)
        state[key] = w / like[0].numel()**0.5

    def bn(prefix, c):
        state[f'{prefix}.weight'] = torch.rand(c, generator=g) + 0.5
        state[f'{prefix}.bias'] = torch.randn(c, generator=g) * 0.1
        state[f'{prefix}.running_mean'] = torch.randn(c, generator=g) * 0.1
        state[f'{prefix}.running_var'] = torch.rand(c, generator=g) + 0.5
        state[f'{prefix}.num_batches_tracked'] = torch.tensor(7)

    conv('first_conv.0.weight', model.conv1.conv.weight)
    bn('first_conv.1', model.conv1.conv.out_channels)
    units = [u for layer in model.layers for u in layer]
    for i, u in enumerate(units):
        for seq, module in ((f'branch_main_1.{0}', u.g_conv_1x1_compress),
                            (f'branch_main_1.{3}', u.depthwise_conv3x3_bn),
                            (f'branch_main_2.{0}', u.g_conv_1x1_expand)):
            conv(f'features.{i}.{seq}.weight', module.conv.weight)
            branch, index = seq.split('.')
            bn(f'features.{i}.{branch}.{int(index) + 1}',
               module.conv.out_channels)
    state['classifier.0.weight'] = torch.randn(1000, model.out_channels[-1])
    return state


def official_forward(state, x, groups):
    """The official network's features (stage2/3/4), written from its
    definition: its channel shuffle reshapes to (C / g, g), then transposes."""

    def bn(x, p):
        return F.batch_norm(x, state[f'{p}.running_mean'],
                            state[f'{p}.running_var'], state[f'{p}.weight'],
                            state[f'{p}.bias'], False, 0., 1e-5)

    x = F.relu(bn(F.conv2d(x, state['first_conv.0.weight'], stride=2,
                           padding=1), 'first_conv.1'))
    x = F.max_pool2d(x, 3, 2, 1)
    outs = []
    for i in range(16):
        p = f'features.{i}'
        stride = 2 if i in (0, 4, 12) else 1
        w = state[f'{p}.branch_main_1.0.weight']
        y = F.relu(bn(F.conv2d(x, w, groups=x.shape[1] // w.shape[1]),
                      f'{p}.branch_main_1.1'))
        w = state[f'{p}.branch_main_1.3.weight']
        y = bn(F.conv2d(y, w, stride=stride, padding=1, groups=w.shape[0]),
               f'{p}.branch_main_1.4')
        b, c, h, w_ = y.shape
        y = y.reshape(b, c // groups, groups, h, w_).transpose(1, 2).reshape(
            b, c, h, w_)
        y = bn(F.conv2d(y, state[f'{p}.branch_main_2.0.weight'],
                        groups=groups), f'{p}.branch_main_2.1')
        if stride == 2:
            x = torch.cat((F.avg_pool2d(x, 3, 2, 1), F.relu(y)), 1)
        else:
            x = F.relu(y + x)
        if i in (3, 11, 15):
            outs.append(x)
    return outs
