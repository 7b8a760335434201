"""Host images and the batch mmdet's ``test_step`` takes, for timing,
export checks and tests."""
import torch


def synthetic_images(batch_size, shape, seed=0):
    """``batch_size`` random uint8 images of ``shape`` (H, W), on the host."""
    gen = torch.Generator().manual_seed(seed)
    h, w = shape
    return [
        torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)
        for _ in range(batch_size)
    ]


def mmdet_batch(images):
    """Wrap host images as the batch ``model.test_step`` takes."""
    from mmdet.structures import DetDataSample
    samples = []
    for i, img in enumerate(images):
        h, w = img.shape[-2:]
        sample = DetDataSample()
        sample.set_metainfo(
            dict(img_id=i, img_shape=(h, w), ori_shape=(h, w),
                 scale_factor=(1.0, 1.0)))
        samples.append(sample)
    return dict(inputs=list(images), data_samples=samples)
