"""A loss that becomes NaN stops training with the iteration number, and
the last checkpoint on disk is the last good one."""
import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner

from shufflenet_det.engine import NonFiniteLossError


class NaNAtIter3(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)
        self.calls = 0

    def forward(self, x, mode='loss'):
        self.calls += 1
        loss = (self.fc(x)**2).mean()
        if self.calls == 3:
            loss = loss * float('nan')
        return dict(loss=loss)


def test_nan_loss_stops_with_iteration_and_last_good_checkpoint(tmp_path):
    runner = Runner(
        model=NaNAtIter3(), work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=[dict(x=torch.ones(2))] * 16, batch_size=2,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=6),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', interval=2, by_epoch=False)),
        custom_hooks=[dict(type='StopOnNonFiniteLossHook')],
        default_scope='mmdet')
    with pytest.raises(NonFiniteLossError) as e:
        runner.train()
    msg = str(e.value)
    assert 'iteration 3' in msg and 'iter_2.pth' in msg and 'nan' in msg
    assert (tmp_path / 'iter_2.pth').exists()
    assert not (tmp_path / 'iter_3.pth').exists()
    state = torch.load(tmp_path / 'iter_2.pth', weights_only=False)
    assert all(torch.isfinite(v).all() for v in state['state_dict'].values())
