from .hooks import NonFiniteLossError, RNGStateHook, StopOnNonFiniteLossHook

__all__ = ['NonFiniteLossError', 'RNGStateHook', 'StopOnNonFiniteLossHook']
