"""Inference-time rewrites of a detector in PyTorch: BatchNorm folded into
the preceding convolution.

Every backbone of the project (and mmdet's ResNet) is built of mmcv
``ConvModule`` s (conv -> norm -> activation); at inference a BatchNorm in
eval mode is an affine map per channel, which the convolution before it can
absorb (``torch.nn.utils.fusion.fuse_conv_bn_eval``): one pass over the
feature map less per convolution. The BatchNorm of a thin map's sum
(``LargeSeparableConv(norm_cfg=...)``, the demo's) folds into the last
convolution of both branches.

Not mmcv's ``fuse_conv_bn``: it fuses any ``Conv2d`` child followed by a
BatchNorm child in registration order (wrong for a ConvModule ordered
norm -> conv), and cannot fold the BatchNorm after a sum of two branches.
"""
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _fold_sum_norm(layer):
    """``norm(a(x) + b(x))`` of a LargeSeparableConv as ``a'(x) + b'(x)``:
    in eval mode the norm is ``s * z + t`` per channel, so both branches'
    last convolutions are scaled by ``s`` and one of them takes ``t``."""
    norm = layer.norm
    scale = (norm.running_var + norm.eps).rsqrt()
    shift = -norm.running_mean * scale
    if norm.affine:
        scale = scale * norm.weight
        shift = shift * norm.weight + norm.bias
    for branch, add in ((layer.branch_a, shift), (layer.branch_b, None)):
        conv = branch[-1]
        if conv.bias is None:
            conv.bias = nn.Parameter(conv.weight.new_zeros(conv.out_channels))
        with torch.no_grad():
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            conv.bias.mul_(scale)
            if add is not None:
                conv.bias.add_(add)
    layer.norm = None


def fold_batchnorm(model):
    """Fold every BatchNorm that directly follows a convolution into it, in
    place: in each mmcv ``ConvModule`` whose order is conv -> norm, in
    every ``nn.Sequential`` where a ``BatchNorm2d`` comes right after a
    ``Conv2d``, and on the sum of a ``LargeSeparableConv``'s two branches.
    The model must be in eval mode (running statistics used).

    Returns:
        int: how many BatchNorm layers were folded.
    """
    from mmcv.cnn import ConvModule

    from ..models.layers import LargeSeparableConv
    if model.training:
        raise ValueError('fold_batchnorm: call model.eval() first (folding '
                         'uses the running statistics)')
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, LargeSeparableConv) and isinstance(
                module.norm, _BatchNorm):
            _fold_sum_norm(module)
            folded += 1
        elif isinstance(module, ConvModule):
            norm = module.norm if module.with_norm else None
            if (isinstance(norm, _BatchNorm) and isinstance(
                    module.conv, nn.Conv2d) and tuple(module.order[:2]) ==
                    ('conv', 'norm')
                    and module.efficient_conv_bn_eval_forward is None):
                module.conv = fuse_conv_bn_eval(module.conv, norm)
                setattr(module, module.norm_name, nn.Identity())
                folded += 1
        elif isinstance(module, nn.Sequential):
            names = list(module._modules)
            for prev, name in zip(names, names[1:]):
                conv, bn = module._modules[prev], module._modules[name]
                if isinstance(conv, nn.Conv2d) and isinstance(
                        bn, nn.BatchNorm2d):
                    module._modules[prev] = fuse_conv_bn_eval(conv, bn)
                    module._modules[name] = nn.Identity()
                    folded += 1
    return folded


def count_batchnorm(model):
    """BatchNorm layers left in ``model``."""
    return sum(isinstance(m, _BatchNorm) for m in model.modules())
