# COCO 2017 detection at 800x1200 (ShuffleNet V2 paper Sec. 4.2, Table 7):
# train2017 is the paper's "train+val minus minival", val2017 its minival.
# Expected layout: data/coco/annotations/instances_{train,val}2017.json,
# data/coco/{train,val}2017/*.jpg (docs/train_test.md, "Getting COCO").
dataset_type = 'CocoDataset'
data_root = 'data/coco/'
backend_args = None

# Images load as stored (EXIF orientation ignored: COCO's boxes refer to the
# stored pixels), the same way for training, testing and DetInferencer. An
# image that cannot be decoded is skipped during training, with a warning
# (LoadImageFromFileOrSkip); evaluation stops at it (docs/robustness.md).
train_pipeline = [
    dict(
        type='LoadImageFromFileOrSkip',
        color_type='color_ignore_orientation',
        backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    # Short side 800, long side at most 1200.
    dict(type='Resize', scale=(1200, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(
        type='LoadImageFromFile',
        color_type='color_ignore_orientation',
        backend_args=backend_args),
    dict(type='Resize', scale=(1200, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    metric='bbox',
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator
