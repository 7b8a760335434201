from .shufflenet_v2 import ShuffleNetV2, ShuffleNetV2Star
from .table7_backbone import build_table7_backbone

__all__ = ['ShuffleNetV2', 'ShuffleNetV2Star', 'build_table7_backbone']
