"""Classification complexity as the papers count it: multiply-adds of the
backbone plus a classifier head (global average pool + fc to 1000 classes)
at 224x224, batch 1.

``torch.utils.flop_counter`` counts 2 FLOPs per multiply-add of convolutions
and matrix products (depthwise and grouped convolutions included); halving
it gives multiply-adds, the "FLOPs" of the ShuffleNet papers (torchvision's
shufflenet_v2_x1_0 counts 144.9M this way, the paper says 146M).
"""
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode


@torch.no_grad()
def classification_complexity(backbone, input_size=224, num_classes=1000):
    """(MFLOPs as multiply-adds, params in M) of ``backbone`` (classification
    form: its last output is the deepest feature) with a classifier head."""
    backbone.eval()
    x = torch.zeros(1, 3, input_size, input_size)
    channels = backbone(x)[-1].size(1)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(channels, num_classes))
    with FlopCounterMode(display=False) as counter:
        head(backbone(x)[-1])
    params = sum(p.numel() for p in backbone.parameters()) + sum(
        p.numel() for p in head.parameters())
    return counter.get_total_flops() / 2e6, params / 1e6
