"""Detecting objects in one's own images: the images a user names (files,
folders, list files), checked before any model is built, and mmdet's
``DetInferencer`` with the project's modules, a checkpoint check and the
drawing on the pixels the model saw. The weights are a PyTorch checkpoint,
or an exported graph run by ONNX Runtime or OpenVINO (the same pipeline,
drawing and JSON; the graph checked against the config first).
``tools/infer.py`` is the command line."""
import os
import os.path as osp

import torch
from mmdet.apis import DetInferencer

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.ppm', '.pgm', '.tif',
                    '.tiff', '.webp')
LIST_EXTENSIONS = ('.txt', '.lst', '.list')


class InferError(ValueError):
    """Input that cannot be used as it is; the message says what to do."""


def is_image(path):
    return path.lower().endswith(IMAGE_EXTENSIONS)


def read_image_list(list_file):
    """The image paths of a list file, one a line (blank lines and ``#``
    comments skipped; a relative path is taken from the list file's folder,
    or else from the current directory)."""
    base = osp.dirname(osp.abspath(list_file))
    try:
        with open(list_file, encoding='utf-8') as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InferError(f'{list_file}: cannot be read as a list of image '
                         f'paths ({e})') from None
    paths = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        candidates = [line] if osp.isabs(line) else [osp.join(base, line),
                                                     line]
        found = next((p for p in candidates if osp.isfile(p)), None)
        if found is None:
            raise InferError(
                f'{list_file}, line {number}: {line} not found (a relative '
                f'path is looked for in {base} and in the current '
                'directory)')
        paths.append(osp.normpath(found))
    if not paths:
        raise InferError(f'{list_file}: lists no image path (one path a '
                         'line)')
    return paths


def collect_images(inputs):
    """The image paths that ``inputs`` (images, folders, list files) name,
    in order, each once."""
    paths = []
    for item in inputs:
        if osp.isdir(item):
            found = sorted(osp.join(item, n) for n in os.listdir(item)
                           if is_image(n) and osp.isfile(osp.join(item, n)))
            if not found:
                raise InferError(
                    f'{item}: no image in this folder (looked for '
                    f'{", ".join(IMAGE_EXTENSIONS)}; subfolders are not '
                    'searched)')
            paths.extend(found)
        elif not osp.exists(item):
            raise InferError(f'{item}: no such image, folder or list file')
        elif is_image(item):
            paths.append(item)
        elif item.lower().endswith(LIST_EXTENSIONS):
            paths.extend(read_image_list(item))
        else:
            raise InferError(
                f'{item}: neither an image ({", ".join(IMAGE_EXTENSIONS)}), '
                'a folder nor a list file (.txt, one image path a line); '
                'dump a video\'s frames to files first, e.g. ffmpeg -i '
                'video.mp4 frames/%06d.jpg')
    not_images = [p for p in paths if not is_image(p)]
    if not_images:
        raise InferError(f'{not_images[0]}: not an image file name '
                         f'({", ".join(IMAGE_EXTENSIONS)})')
    # The outputs are named after the images: the same name twice would
    # overwrite the first one's.
    seen = {}
    for p in paths:
        stem = osp.splitext(osp.basename(p))[0]  # preds/STEM.json
        if stem in seen and osp.abspath(seen[stem]) != osp.abspath(p):
            raise InferError(
                f'{seen[stem]} and {p} have the same file name (without '
                'its extension), so their pictures or predictions would '
                'overwrite each other; run them separately (another '
                '--out-dir) or rename one')
        seen[stem] = p
    first = {}
    for p in paths:
        first.setdefault(osp.abspath(p), p)
    return list(first.values())


def check_images_readable(paths):
    """Stop before the model is built when an image cannot be read (its
    header, with Pillow: empty, truncated before the header, not an
    image)."""
    from ..datasets.coco_checks import check_image_files
    unreadable = check_image_files(paths, mode='header')[0]
    if unreadable:
        (path, reason), more = unreadable[0], len(unreadable) - 1
        others = f' (and {more} more image(s))' if more else ''
        raise InferError(f'{path}: cannot be read as an image: {reason}'
                         f'{others}; replace it or leave it out of INPUTS')


def load_checkpoint(checkpoint):
    """The checkpoint as a dict (mmengine's loader, made safe by the
    project), or one line saying why it cannot be loaded."""
    from ..utils.checkpoint import load_checkpoint_file
    try:
        ckpt = load_checkpoint_file(checkpoint, map_location='cpu')
    except Exception as e:  # noqa: BLE001  (torch says why in many ways)
        why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InferError(f'checkpoint {checkpoint}: cannot be loaded ({why}); '
                         'is it a complete .pth written by tools/train.py?'
                         ) from None
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state or not all(
            torch.is_tensor(v) for v in state.values()):
        raise InferError(f'checkpoint {checkpoint}: holds no state_dict of '
                         'tensors (not a model checkpoint)')
    return ckpt


def check_fits(model, ckpt, checkpoint, config):
    """mmengine loads a checkpoint that does not fit the model with a
    warning only (the weights it lacks stay random): refuse it instead."""
    state = ckpt.get('state_dict', ckpt)
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}'
              for k in own if k in state and state[k].shape != own[k].shape]
    if not (missing or unexpected or shapes):
        return
    parts = []
    for what, items in (('missing', missing), ('unexpected', unexpected),
                        ('of another shape (checkpoint vs model)', shapes)):
        if items:
            parts.append(f'{len(items)} keys {what} (first: {items[0]})')
    raise InferError(
        f'checkpoint {checkpoint} does not fit {config}: {"; ".join(parts)}. '
        'Give the config it was trained with.')


def find_image_loader(cfg):
    """The test pipeline's image loader, renamed 'LoadImageFromFile' (the
    name DetInferencer looks for to put its InferencerLoader in its place;
    the project's LoadImageFromFileOrSkip and scoped names are accepted),
    its arguments (color_type) kept."""
    for t in cfg.test_dataloader.dataset.pipeline:
        name = str(t.get('type', '')).split('.')[-1]
        if name in ('LoadImageFromFile', 'LoadImageFromFileOrSkip'):
            t['type'] = 'LoadImageFromFile'
            return t
    raise InferError(
        'test_dataloader.dataset.pipeline: no LoadImageFromFile transform, '
        'which DetInferencer needs to read the images')


class ProjectDetInferencer(DetInferencer):
    """mmdet's ``DetInferencer`` that refuses a checkpoint that does not fit
    the model, and draws on the image decoded as the model saw it.

    Args:
        fit_check (tuple, optional): (checkpoint, config), named in the
            message of a checkpoint that does not fit.
        color_type (str): the test pipeline's ``LoadImageFromFile``
            ``color_type``, with which the drawn image is decoded.
    """

    def __init__(self, *args, fit_check=None, color_type='color', **kwargs):
        self.fit_check = fit_check
        self.color_type = color_type
        super().__init__(*args, **kwargs)

    def _load_weights_to_model(self, model, checkpoint, cfg):
        if checkpoint is not None and self.fit_check:
            check_fits(model, checkpoint, *self.fit_check)
        super()._load_weights_to_model(model, checkpoint, cfg)

    def visualize(self, inputs, preds, no_save_vis=False, img_out_dir='',
                  pred_score_thr=0.3, **kwargs):
        # DetInferencer decodes the drawn image with mmcv's default
        # color_type ('color': OpenCV applies a JPEG's EXIF rotation), while
        # the boxes refer to the pixels the test pipeline loaded
        # ('color_ignore_orientation' in the project's configs: as stored).
        import mmcv
        import mmengine
        if no_save_vis or not img_out_dir:
            return None
        for path, pred in zip(inputs, preds):
            img = mmcv.imfrombytes(mmengine.fileio.get(path),
                                   flag=self.color_type)
            name = osp.basename(path)
            self.visualizer.add_datasample(
                name, img[:, :, ::-1], pred, show=False, draw_gt=False,
                draw_pred=True, pred_score_thr=pred_score_thr,
                out_file=osp.join(img_out_dir, 'vis', name))
            self.num_visualized_imgs += 1
        return None


class GraphDetInferencer(ProjectDetInferencer):
    """:class:`ProjectDetInferencer` whose model is an exported graph
    (.onnx, or an OpenVINO int8 IR .xml) run by ONNX Runtime or OpenVINO
    (:func:`~.evaluation.open_graph`, which checks it against the config):
    the config's test pipeline feeds it and its detections are drawn and
    written as a checkpoint's are.

    Args:
        backend (str): 'onnxruntime' or 'openvino'.
        threads (int, optional): the runtime's threads.
        precision (str): OpenVINO's inference precision ('f32', 'bf16').
    """

    def __init__(self, *args, backend='onnxruntime', threads=None,
                 precision='f32', **kwargs):
        self.graph_cfg = dict(backend=backend, threads=threads,
                              precision=precision)
        super().__init__(*args, **kwargs)

    def _init_model(self, cfg, weights, device):
        from ..deploy.wrapper import DeployError
        from .evaluation import open_graph
        try:
            model, _ = open_graph(cfg, weights, **self.graph_cfg)
        except DeployError as e:
            raise InferError(str(e)) from None
        # As a checkpoint's dataset_meta: the config's classes and palette
        # (the graph holds the classes only).
        meta = dict(cfg.test_dataloader.dataset.get('metainfo') or {})
        meta.setdefault('classes', model.graph.metadata.get('classes'))
        if not meta['classes']:
            raise InferError(
                f'{weights}: no class names in the graph, nor in the '
                'config\'s test_dataloader.dataset.metainfo; add them there')
        model.dataset_meta = meta
        return model


#: weights file endings -> the backend that runs them by default.
GRAPH_BACKENDS = {'.onnx': 'onnxruntime', '.xml': 'openvino'}


def build_inferencer(config, checkpoint, device, backend=None, threads=None,
                     precision='f32'):
    """A :class:`ProjectDetInferencer` of ``config`` with the weights of
    ``checkpoint`` on ``device``, or, for an exported graph (.onnx, .xml),
    a :class:`GraphDetInferencer` in ``backend`` (default: ONNX Runtime for
    .onnx, OpenVINO for .xml); a broken checkpoint or a config without
    what DetInferencer needs is refused with one line."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)  # imports its custom_imports too
    if 'test_dataloader' not in cfg:
        raise InferError(f'{config}: no test_dataloader (DetInferencer takes '
                         'the test pipeline from it)')
    if 'visualizer' not in cfg:
        raise InferError(f'{config}: no visualizer (e.g. visualizer = '
                         "dict(type='DetLocalVisualizer')) to draw with")
    loader = find_image_loader(cfg)
    # The pictures are written by the inferencer, not by a visualizer
    # backend (which would warn that it has no save_dir).
    cfg.visualizer.vis_backends = None
    color_type = loader.get('color_type', 'color')
    ext = osp.splitext(checkpoint)[1].lower()
    if ext in GRAPH_BACKENDS:
        if device not in (None, 'cpu'):
            raise InferError(f'{checkpoint}: an exported graph runs on the '
                             'CPU; use --device cpu')
        return GraphDetInferencer(
            model=cfg, weights=checkpoint, device='cpu', scope='mmdet',
            show_progress=False, color_type=color_type,
            backend=backend or GRAPH_BACKENDS[ext], threads=threads,
            precision=precision)
    if backend not in (None, 'pytorch'):
        raise InferError(f'--backend {backend} runs an exported graph '
                         f'(.onnx or .xml), not {checkpoint}')
    if cfg.model.get('backbone', {}).get('init_cfg'):
        cfg.model.backbone.init_cfg = None  # the checkpoint has the weights
    load_checkpoint(checkpoint)  # a clear error for a broken file
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    # The project registers its modules in mmdet's registries, so the scope
    # is mmdet's whatever the config's default_scope says.
    return ProjectDetInferencer(
        model=cfg, weights=checkpoint, device=device, scope='mmdet',
        show_progress=False, fit_check=(checkpoint, config),
        color_type=color_type)


def quiet():
    """Leave out warnings that say nothing about the user's input: boxes
    clipped to the image's right or bottom edge (x2 == width) are 'out of
    bounds' for mmengine's visualizer; mmdet has no 'function' registry, so
    mmengine looks pseudo_collate up in its own."""
    import logging
    import warnings

    from mmengine.logging import MMLogger
    warnings.filterwarnings(
        'ignore', message=r'Warning: The \w+ is out of bounds')

    class _Filter(logging.Filter):

        def filter(self, record):
            return 'in the "function" registry tree' not in str(record.msg)

    MMLogger.get_instance('mmengine').addFilter(_Filter())


def run_inference(config, checkpoint, inputs, out_dir='work_dirs/infer',
                  score_thr=0.3, device=None, batch_size=1, backend=None,
                  threads=None, precision='f32'):
    """Detect objects in the images ``inputs`` name with ``checkpoint`` (a
    .pth, or an exported graph run in ``backend``: :func:`build_inferencer`)
    and write, under
    ``out_dir``, ``vis/NAME`` (the detections scoring at least
    ``score_thr`` drawn) and ``preds/NAME.json`` (every detection, mmdet's
    format). Everything a user gives is checked before the model is built.

    Returns:
        tuple: (image paths, predictions: one dict of ``bboxes``,
        ``scores``, ``labels`` per image).
    """
    from ..utils.device import cuda_problem
    for path, what in ((config, 'config'), (checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            raise InferError(f'{what} {path} not found')
    if not 0 <= score_thr <= 1:
        raise InferError(f'--score-thr {score_thr}: give a score '
                         'between 0 and 1')
    if batch_size < 1:
        raise InferError(f'--batch-size {batch_size}: give 1 or more')
    images = collect_images(inputs)
    check_images_readable(images)
    # A graph's own device message comes from build_inferencer.
    graph = osp.splitext(checkpoint)[1].lower() in GRAPH_BACKENDS
    problem = device and not graph and cuda_problem(device)
    if problem:
        raise InferError(problem)
    quiet()
    inferencer = build_inferencer(config, checkpoint, device, backend,
                                  threads, precision)
    try:
        results = inferencer(
            images, batch_size=batch_size, out_dir=out_dir,
            pred_score_thr=score_thr, no_save_vis=False, no_save_pred=False)
    except AssertionError as e:  # mmcv's loader: 'failed to load image: P'
        if 'failed to load image' in str(e):
            path = str(e).split('failed to load image:')[-1].strip()
            raise InferError(f'{path}: cannot be decoded as an image; '
                             'replace it or leave it out of INPUTS'
                             ) from None
        raise
    return images, results['predictions']
