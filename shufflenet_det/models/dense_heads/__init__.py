from .early_stop_rpn_head import EarlyStopRPNHead, nms_first_k

__all__ = ['EarlyStopRPNHead', 'nms_first_k']
