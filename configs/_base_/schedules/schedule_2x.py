# Light-Head R-CNN training (DESIGN.md section 3): SGD, lr 0.01 for 16
# images per iteration (8 GPUs x 2), momentum 0.9, weight decay 1e-4, linear
# warm-up. We use mmdet's 2x length (24 epochs, lr / 10 at epochs 16 and
# 22): ImageNet-initialised light backbones with frozen BN are still
# improving after mmdet's 1x (12 epochs); this length was not tuned here.
# With another total batch size, --auto-scale-lr scales lr linearly.
# mmengine's EpochBasedTrainLoop that resumes inside an epoch, seeds every
# sample from (seed, epoch, index) and stops cleanly on pre-emption, so a
# run killed or pre-empted and resumed trains on exactly the same batches
# (shufflenet_det.engine.resumable; docs/robustness.md).
train_cfg = dict(
    type='ResumableEpochBasedTrainLoop', max_epochs=24, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=24, by_epoch=True,
         milestones=[16, 22], gamma=0.1)
]

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=35, norm_type=2))

auto_scale_lr = dict(enable=False, base_batch_size=16)
