from .mobilenet_v2 import MobileNetV2Paper
from .shufflenet_v1 import ShuffleNetV1
from .shufflenet_v2 import ShuffleNetV2, ShuffleNetV2Star
from .snet import SNet
from .xception import LightXception

__all__ = [
    'LightXception', 'MobileNetV2Paper', 'ShuffleNetV1', 'ShuffleNetV2',
    'ShuffleNetV2Star', 'SNet'
]
