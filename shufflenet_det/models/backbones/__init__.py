from .shufflenet_v2 import ShuffleNetV2, ShuffleNetV2Star

__all__ = ['ShuffleNetV2', 'ShuffleNetV2Star']
