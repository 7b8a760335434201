"""Classification complexity as the ShuffleNet papers count it.

"FLOPs" there are multiply-adds of the network with its classifier head
(global average pool + fc to 1000 classes) at 224x224, batch 1.
``torch.utils.flop_counter`` counts 2 FLOPs per multiply-add of
convolutions and matrix products (depthwise and grouped convolutions
included; pooling, BN and activations are not counted, nor by the papers);
half of it is the papers' figure. torchvision's shufflenet_v2_x1_0 counts
144.9M this way, the paper's Table 5 says 146M. Not mmengine's
``FlopAnalyzer`` (:mod:`.flops`, for detectors): its handles also count
BatchNorm and pooling, which the papers leave out.

Shared by ``tools/analysis/backbone_flops.py`` and the tests.
"""
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode


@torch.no_grad()
def classification_complexity(backbone, input_size=224, num_classes=1000):
    """Multiply-adds and parameters of ``backbone`` with a classifier head.

    Args:
        backbone (nn.Module): a backbone in classification form: its last
            output is the deepest feature (the one the classifier pools).
        input_size (int): side of the square input. Default: 224.
        num_classes (int): outputs of the fc. Default: 1000.

    Returns:
        tuple[float, float]: (MFLOPs as multiply-adds, parameters in
        millions), both including the fc.
    """
    was_training = backbone.training
    backbone.eval()
    x = torch.zeros(1, 3, input_size, input_size)
    with FlopCounterMode(display=False) as counter:
        feature = backbone(x)[-1]  # (1, C, H, W)
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(feature.size(1), num_classes))
        head(feature)
    backbone.train(was_training)
    params = sum(p.numel() for m in (backbone, head)
                 for p in m.parameters())
    return counter.get_total_flops() / 2e6, params / 1e6


def count_backbones(cfgs, input_size=224):
    """:func:`classification_complexity` of the backbone each config of
    ``cfgs`` builds (mmdet's ``MODELS``): a list of (MFLOPs, params in
    millions)."""
    # The backbones are registered: importing this package imported
    # shufflenet_det.
    from mmdet.registry import MODELS
    return [classification_complexity(MODELS.build(cfg),
                                      input_size=input_size)
            for cfg in cfgs]
