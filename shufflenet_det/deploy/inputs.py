"""What the exported graph takes: images padded, stacked and ordered as its
input (``input``) and their sizes (``img_shape``), from host images or
from files through the config's test pipeline. Used by the int8
calibration, the ONNX evaluation and the benchmark."""
import numpy as np

from .wrapper import DeployError


def input_fill(mean, bgr_to_rgb, std=None, pad_value=0):
    """The padding colour of the graph's input, (3, 1, 1) float32 RGB:
    ``mean + pad_value * std`` (given in the order after mmdet's optional
    BGR -> RGB flip), which the graph's normalisation turns into mmdet's
    ``pad_value`` padding. The graph sets what lies outside each image's
    ``img_shape`` to that itself: the colour matters only to a caller who
    leaves ``img_shape`` out."""
    mean = np.asarray(mean, np.float32).reshape(3)
    if std is not None:
        mean = mean + np.float32(pad_value) * np.asarray(
            std, np.float32).reshape(3)
    if not bgr_to_rgb:
        mean = mean[::-1]  # the model works in BGR: its mean is BGR
    return np.ascontiguousarray(mean).reshape(3, 1, 1)


def config_fill(cfg):
    """:func:`input_fill` of a config's ``data_preprocessor``."""
    mp = cfg.model.data_preprocessor
    return input_fill(mp.get('mean') or [0, 0, 0],
                      mp.get('bgr_to_rgb', False)
                      or mp.get('rgb_to_bgr', False),
                      mp.get('std') or [1, 1, 1], mp.get('pad_value', 0))


def graph_input(images, fill, shape=None, divisor=32):
    """Host images (uint8 BGR (3, h, w), tensors or arrays) -> the graph's
    input: float32 RGB (N, 3, H, W), each image at the top left, the rest
    ``fill``. H, W: ``shape`` if given (a graph with a fixed input), else
    the largest image rounded up to multiples of ``divisor``."""
    arrays = [np.asarray(im) for im in images]
    if shape is None:
        h = max(a.shape[-2] for a in arrays)
        w = max(a.shape[-1] for a in arrays)
        shape = (-(-h // divisor) * divisor, -(-w // divisor) * divisor)
    x = np.empty((len(arrays), 3, *shape), np.float32)
    x[:] = fill
    for i, a in enumerate(arrays):
        h, w = a.shape[-2:]
        if h > shape[0] or w > shape[1]:
            raise DeployError(
                f'an image of {h}x{w} does not fit the graph\'s fixed input '
                f'{shape[0]}x{shape[1]}: export the graph with --dynamic, or '
                'with a --shape that holds the resized images')
        x[i, :, :h, :w] = a[::-1]  # BGR -> RGB
    return x


def image_sizes(images):
    """The (h, w) of each host image (3, h, w): the graph's ``img_shape``,
    int64 (N, 2)."""
    return np.asarray([np.shape(im)[-2:] for im in images],
                      np.int64).reshape(-1, 2)


def graph_feeds(images, fill, shape=None, divisor=32):
    """The graph's inputs for host images (:func:`graph_input`): ``input``
    and ``img_shape``, each image's own size, to which the graph clips its
    boxes and outside which it sets the input to the padding colour."""
    return {'input': graph_input(images, fill, shape, divisor),
            'img_shape': image_sizes(images)}


def input_dims(path_or_model):
    """The graph input's (N, H, W): ints where fixed, None where dynamic."""
    import onnx
    model = (onnx.load(path_or_model, load_external_data=False)
             if isinstance(path_or_model, str) else path_or_model)
    inputs = [i for i in model.graph.input if i.name == 'input']
    if not inputs:
        raise DeployError('the graph has no input named "input": export it '
                          'with tools/deployment/export_onnx.py')
    dims = inputs[0].type.tensor_type.shape.dim
    n, _, h, w = (d.dim_value if d.HasField('dim_value') else None
                  for d in dims)
    return n, h, w


def pipeline_images(cfg, paths):
    """Yields each image of ``paths`` as the config's test pipeline makes
    it (its annotation loading left out): uint8 BGR (3, h, w) tensors."""
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope

    init_default_scope(cfg.get('default_scope', 'mmdet'))
    steps = [t for t in cfg.test_dataloader.dataset.pipeline
             if t['type'] != 'LoadAnnotations']
    pipeline = Compose(steps)
    for i, path in enumerate(paths):
        out = pipeline(dict(img_path=path, img_id=i))
        if out is None:
            raise DeployError(f'{path}: the test pipeline dropped this image '
                              '(cannot be decoded?): remove it from the '
                              'calibration images')
        yield out['inputs']

