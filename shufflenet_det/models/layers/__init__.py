from .large_separable_conv import LargeSeparableConv
from .ps_align import PSAlignMax, ps_align_max

__all__ = ['LargeSeparableConv', 'PSAlignMax', 'ps_align_max']
