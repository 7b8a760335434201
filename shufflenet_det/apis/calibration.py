"""The images an int8 graph is calibrated on
(``tools/deployment/quantize_onnx.py``): a folder or a list file, as
``tools/infer.py`` takes them, or the config's training images."""
import os.path as osp

import numpy as np

from .inference import collect_images


def train_images(cfg):
    """The folder of the config's training images."""
    ds = cfg.train_dataloader.dataset
    ds = ds.get('dataset', ds)  # a wrapper (RepeatDataset, ...)
    return osp.join(ds.get('data_root', ''),
                    ds.get('data_prefix', {}).get('img', ''))


def calibration_paths(source, num):
    """``num`` image paths of ``source`` (folder or list file), spread
    evenly over its sorted images."""
    paths = collect_images([source])
    if num < 1:
        raise ValueError(f'--num must be >= 1, got {num}')
    if num < len(paths):
        idx = np.linspace(0, len(paths) - 1, num).round().astype(int)
        paths = [paths[i] for i in idx]
    return paths


def calibration_reader(cfg, graph, source=None, num=32):
    """The calibration batches of the exported graph at ``graph`` (.onnx):
    ``num`` images of ``source`` (folder or list file; default: the
    config's training images) through the config's test pipeline, in
    batches of the graph's batch size and shape
    (:class:`~shufflenet_det.deploy.quantize.ImageCalibrationReader`, the
    same for ONNX Runtime's int8 and OpenVINO's).

    Returns:
        tuple: (the reader, the source read).
    """
    from ..deploy.inputs import config_fill, input_dims, pipeline_images
    from ..deploy.quantize import ImageCalibrationReader
    given = source is not None
    source = source if given else train_images(cfg)
    if not given and not osp.isdir(source):
        raise FileNotFoundError(
            f'{source} (the config\'s training images) not found: pass '
            'the calibration images with --calib-images DIR or a text '
            'file of image paths')
    paths = calibration_paths(source, num)
    n, h, w = input_dims(graph)
    batch = n or 1
    if len(paths) < batch:
        raise ValueError(
            f'{graph} takes batches of {batch} images, {source} has '
            f'{len(paths)}: give at least {batch} calibration images')
    reader = ImageCalibrationReader(pipeline_images(cfg, paths),
                                    config_fill(cfg), batch,
                                    (h, w) if h and w else None)
    return reader, source
