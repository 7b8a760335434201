from .hooks import (NonFiniteLossError, RNGStateHook, StopOnNonFiniteLossHook,
                    TrainTimeBudgetHook, UnreadableImageHook)
from .preemption import (PREEMPTED_EXIT_CODE, TrainingPreempted,
                         install_preemption_handler)
from .resumable import (ResumableBatchSampler, ResumableEpochBasedTrainLoop,
                        ResumableIterBasedTrainLoop, SeededSampleDataset,
                        build_resumable_dataloader, make_resumable)

__all__ = ['NonFiniteLossError', 'RNGStateHook', 'StopOnNonFiniteLossHook',
           'TrainTimeBudgetHook', 'UnreadableImageHook',
           'PREEMPTED_EXIT_CODE', 'TrainingPreempted',
           'install_preemption_handler', 'ResumableBatchSampler',
           'ResumableEpochBasedTrainLoop', 'ResumableIterBasedTrainLoop',
           'SeededSampleDataset', 'build_resumable_dataloader',
           'make_resumable']
