from .hooks import NonFiniteLossError, StopOnNonFiniteLossHook

__all__ = ['NonFiniteLossError', 'StopOnNonFiniteLossHook']
