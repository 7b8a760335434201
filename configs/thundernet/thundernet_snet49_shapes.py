# ThunderNet-SNet49 on the embedded shapes set at 320x320, from the SNet49
# pretrained on the shapes crops (pretrain_snet49_crops.py): the COCO road in
# miniature, as the mini Table 7 cells (configs/table7/embedded/
# finetune_shapes.py, docs/table7_embedded.md). Changed from
# thundernet_snet49_coco.py, and nothing else: the data (data/shapes_rc: 600
# training images where colour does not give the class), its 5 classes,
# the batch (4), the backbone's BN statistics frozen (norm_eval: 4 images
# give poor statistics), and the schedule: 6 epochs of 144 iterations, SGD
# lr 0.01 as the mini Table 7 cells, for a comparison at the same budget.
# Kept: 320x320 inputs with the paper's {240, 320, 480} training sizes, the
# paper's anchors and proposal counts.
_base_ = ['./thundernet_snet49_coco.py']

data_root = 'data/shapes_rc/'
metainfo = dict(
    classes=('circle', 'rectangle', 'triangle', 'star', 'cross'),
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 180, 0),
             (145, 30, 180)])
# The COCO pipeline without the SSD-style zoom-out and crop (the shapes are
# already small in 320-416 px images).
train_pipeline = [
    dict(type='LoadImageFromFileOrSkip',
         color_type='color_ignore_orientation'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=[(240, 240), (320, 320),
                                            (480, 480)], keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=4, num_workers=1,
    dataset=dict(
        data_root=data_root, metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=0),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=1,
    dataset=dict(
        data_root=data_root, metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

model = dict(
    backbone=dict(
        norm_eval=True,
        init_cfg=dict(checkpoint='checkpoints/snet49_shapes_crops.pth')),
    roi_head=dict(bbox_head=dict(num_classes=5)))

# 144 iterations an epoch; warm-up 100 iterations, lr / 10 for the last
# epoch, as finetune_shapes.py.
max_epochs = 6
train_cfg = dict(_delete_=True, type='ResumableEpochBasedTrainLoop',
                 max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 3, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
         milestones=[max_epochs - 1], gamma=0.1)
]
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=1))
log_processor = dict(window_size=20, by_epoch=True)
randomness = dict(seed=0)
