from .loading import LoadImageFromFileOrSkip  # noqa: F401  (registers it)
from .shapes import ShapesDataset  # noqa: F401  (registers it)

__all__ = ['LoadImageFromFileOrSkip', 'ShapesDataset']
