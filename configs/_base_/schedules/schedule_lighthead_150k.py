# The official Light-Head R-CNN schedule (zengarden/light_head_rcnn,
# experiments/lizeming/light_head_rcnn.ori_res101.coco.ps_roialign/config.py
# and tools/train.py; docs/table7.md "Settings"), at its 16 images per
# iteration (8 GPUs x 2):
# - 500 warm-up iterations, lr linear from lr/3 (warm_fractor = 1/3), run
#   before the first "epoch"; then 30 epochs of 80,000 images = 5,000
#   iterations each: 150,500 iterations, 2.4M images;
# - lr 0.01 until epoch 19, x0.1 until 25, x0.01 until 30: steps at
#   iterations 500 + 19 * 5,000 and 500 + 25 * 5,000;
# - SGD momentum 0.9, weight decay 1e-4 on weights only (biases_regularizer
#   = tf.no_regularizer), no gradient clipping;
# - every variable named conv_new* (the thin map) has its gradient, weight
#   decay included, multiplied by 3: lr_mult 3 does exactly that (decay_mult
#   stays 1, or the decay would count 9 times); its biases are not decayed.
# With another number of images per iteration, --auto-scale-lr scales lr;
# the iteration counts below stay those of 16 images (scale them by hand to
# keep 2.4M images).
# The project's loop resumes inside an interval and seeds every sample
# (shufflenet_det.engine.resumable; docs/robustness.md).
# The runtime is inherited here, so that the iteration-based checkpoint and
# log settings at the end replace its epoch-based ones.
_base_ = ['../default_runtime.py']

warmup_iters = 500
iters_per_epoch = 80000 // 16
max_iters = warmup_iters + 30 * iters_per_epoch

train_cfg = dict(
    type='ResumableIterBasedTrainLoop', max_iters=max_iters,
    val_interval=iters_per_epoch)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    # mmengine's LinearLR reaches the full lr at iteration end - 1; the
    # official warm-up at iteration 500.
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
         end=warmup_iters + 1),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[warmup_iters + 19 * iters_per_epoch,
                     warmup_iters + 25 * iters_per_epoch],
         gamma=0.1)
]

# The thin map's biases by name (LargeSeparableConv's branch_a / branch_b),
# so that they get the 3x lr and still no decay: mmengine applies
# bias_decay_mult only to parameters that no custom key matches.
_thin_map_bias = dict(lr_mult=3.0, decay_mult=0.0)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001),
    clip_grad=None,
    paramwise_cfg=dict(
        bias_decay_mult=0.0,
        norm_decay_mult=0.0,
        custom_keys={
            'thin_map': dict(lr_mult=3.0, decay_mult=1.0),
            'thin_map.branch_a.0.bias': _thin_map_bias,
            'thin_map.branch_a.1.bias': _thin_map_bias,
            'thin_map.branch_b.0.bias': _thin_map_bias,
            'thin_map.branch_b.1.bias': _thin_map_bias,
            'thin_map.norm': _thin_map_bias,  # only where a config adds one
        }))

auto_scale_lr = dict(enable=False, base_batch_size=16)

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=iters_per_epoch, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)
