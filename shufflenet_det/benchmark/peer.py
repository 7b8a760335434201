"""The peer every timing is compared with: a light two-stage detector of
torchvision's, timed in the same run as ours (docs/benchmarks.md)."""

PEER = 'torchvision fasterrcnn_mobilenet_v3_large_fpn'


def build_peer(shape=(800, 1200)):
    """torchvision's fasterrcnn_mobilenet_v3_large_fpn, random weights, its
    resize set so that images of ``shape`` keep their size (800x1200:
    min_size 800, max_size 1200)."""
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn
    return fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, min_size=min(shape),
        max_size=max(shape)).eval()
