from .hardest_roi_sampler import HardestRoISampler
from .ps_roi_align_extractor import PSRoIAlignExtractor

__all__ = ['HardestRoISampler', 'PSRoIAlignExtractor']
