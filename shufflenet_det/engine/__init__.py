from .hooks import (NonFiniteLossError, RNGStateHook, StopOnNonFiniteLossHook,
                    TrainTimeBudgetHook, UnreadableImageHook)

__all__ = ['NonFiniteLossError', 'RNGStateHook', 'StopOnNonFiniteLossHook',
           'TrainTimeBudgetHook', 'UnreadableImageHook']
