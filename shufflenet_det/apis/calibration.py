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
