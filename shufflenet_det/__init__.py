"""shufflenet-det: ShuffleNet V2 and Light-Head R-CNN for MMDetection 3.x.

Importing the package registers its backbones, layers, heads and detectors in
mmdet's ``MODELS`` registry (configs do it with ``custom_imports``) and makes
mmengine's local checkpoint loader work with torch >= 2.6
(:mod:`shufflenet_det.utils.checkpoint`).
"""
from .utils import checkpoint  # noqa: F401  (patches the local checkpoint loader)
from . import datasets, engine, models, table7  # noqa: F401
from .version import __version__

__all__ = ['__version__']
