from .compact_rpn_head import CompactRPNHead
from .early_stop_rpn_head import EarlyStopRPNHead, nms_first_k

__all__ = ['CompactRPNHead', 'EarlyStopRPNHead', 'nms_first_k']
