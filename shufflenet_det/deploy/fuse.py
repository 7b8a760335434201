"""Inference-time rewrites of a detector in PyTorch: BatchNorm folded into
the preceding convolution.

Every backbone of the project (and mmdet's ResNet) is built of mmcv
``ConvModule`` s (conv -> norm -> activation); at inference a BatchNorm in
eval mode is an affine map per channel, which the convolution before it can
absorb (``torch.nn.utils.fusion.fuse_conv_bn_eval``): one pass over the
feature map less per convolution.
"""
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm(model):
    """Fold every BatchNorm that directly follows a convolution into it, in
    place: in each mmcv ``ConvModule`` whose order is conv -> norm, and in
    every ``nn.Sequential`` where a ``BatchNorm2d`` comes right after a
    ``Conv2d``. The model must be in eval mode (running statistics used).

    Returns:
        int: how many BatchNorm layers were folded.
    """
    from mmcv.cnn import ConvModule
    if model.training:
        raise ValueError('fold_batchnorm: call model.eval() first (folding '
                         'uses the running statistics)')
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, ConvModule):
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
