from .hooks import (NonFiniteLossError, RNGStateHook, StopOnNonFiniteLossHook,
                    UnreadableImageHook)

__all__ = ['NonFiniteLossError', 'RNGStateHook', 'StopOnNonFiniteLossHook',
           'UnreadableImageHook']
