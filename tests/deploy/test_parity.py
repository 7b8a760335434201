"""ONNX Runtime against PyTorch: the exported Light-Head R-CNN gives the
detections that mmdet's ``LightHeadRCNN.predict`` gives, on shapes images,
for several Table 7 cells; and the stages in between (the RPN's proposals,
the R-CNN's raw outputs) agree too, so that a mismatch says where it
comes from. At sizes that are not multiples of 32 (300x397, and a batch of
two sizes) the graph pads and clips as mmdet does, from the sizes it is
given: no box reaches into the padding. The models are seeded, with
measured BatchNorm statistics and decisive heads (deploy_helpers.py says
why)."""
import numpy as np
import pytest
import torch
from deploy_helpers import (as_batch, check_stages, decisive_model,
                            table7_config)

from shufflenet_det.deploy import export_onnx, ort_session
from shufflenet_det.utils.inputs import mmdet_batch

pytest.importorskip('onnxruntime')

SHAPE = (288, 384)


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    # Tiny inputs; the machine may be shared.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def inside_images(boxes, bgr):
    """Whether boxes (N, ..., 4) lie within each image's own size."""
    hw = np.array([im.shape[-2:] for im in bgr], np.float32)
    hi = hw[:, [1, 0, 1, 0]].reshape(len(bgr), *[1] * (boxes.ndim - 2), 4)
    return bool((boxes >= 0).all() and (boxes <= hi).all())


def check_parity(model, session, bgr, rgb, feeds=None):
    """The graph on ``feeds`` (default: ``rgb`` alone as ``input``)
    against mmdet's ``predict`` on ``bgr``."""
    feeds = feeds or {'input': rgb.numpy()}
    dets, labels, props, valid, cls_score, bbox_pred = session.run(
        None, feeds)
    n, k = len(bgr), model.test_cfg.rcnn.max_per_img
    # The interface.
    assert dets.shape == (n, k, 5) and dets.dtype == np.float32
    assert labels.shape == (n, k) and labels.dtype == np.int64
    unused = dets[..., 4] == 0
    assert (labels[unused] == -1).all() and (dets[unused] == 0).all()
    assert (np.diff(dets[..., 4], axis=1) <= 0).all()  # best first
    # Proposals and detections within each image, none in the padding.
    assert inside_images(dets[..., :4], bgr)
    assert inside_images(props, bgr)

    # 1. The proposals: mmdet's RPN (with its own NMS) on the same images;
    # 2. the R-CNN's raw outputs on them; 3. the detections.
    with torch.no_grad():
        data = model.data_preprocessor(mmdet_batch(bgr), False)
        rpn_x, rcnn_x = model.extract_feat(data['inputs'])
        ref = model.rpn_head.predict(rpn_x, data['data_samples'],
                                     rescale=False)
    return check_stages(model, bgr, (dets, labels, props, valid, cls_score,
                                     bbox_pred), ref, rcnn_x)


@pytest.mark.parametrize('config', [
    table7_config('shufflenetv2star', '140m'),  # configs/lighthead_v2star.py
    table7_config('shufflenetv1', '40m'),
    table7_config('mobilenetv2', '40m'),
    table7_config('xception', '40m'),
], ids=['v2star_140m', 'v1_40m', 'mobilenetv2_40m', 'xception_40m'])
def test_onnxruntime_matches_pytorch(tmp_path, shapes_val, config):
    bgr, rgb = as_batch(shapes_val[:2], SHAPE)
    model = decisive_model(config, bgr)
    path = str(tmp_path / 'model.onnx')
    export_onnx(model, path, SHAPE, batch_size=2, debug=True)
    check_parity(model, ort_session(path, threads=1), bgr, rgb)


def test_dynamic_graph_any_batch_and_size(tmp_path, shapes_val):
    """One --dynamic graph, traced at one batch size and shape, run at
    others: still the detections of PyTorch."""
    config = table7_config('shufflenetv2', '40m')
    bgr, _ = as_batch(shapes_val[:3], (256, 320))
    model = decisive_model(config, bgr)
    path = str(tmp_path / 'dynamic.onnx')
    export_onnx(model, path, (256, 320), batch_size=2, dynamic=True,
                debug=True)
    session = ort_session(path, threads=1)
    for n, shape in ((1, (256, 320)), (3, (320, 224))):
        bgr, rgb = as_batch(shapes_val[:n], shape)
        check_parity(model, session, bgr, rgb)


def test_fewer_candidates_than_detection_rows(tmp_path, shapes_val):
    """16 proposals x 5 classes < 100 rows: the graph pads its candidates
    (and the check above also covers the empty rows)."""
    bgr, rgb = as_batch(shapes_val[:2], (256, 320))
    model = decisive_model(table7_config('shufflenetv2', '40m'), bgr,
                           cfg_options={
                               'model.roi_head.bbox_head.num_classes': 5,
                               'model.test_cfg.rpn.max_per_img': 16})
    path = str(tmp_path / 'model.onnx')
    export_onnx(model, path, (256, 320), batch_size=2, debug=True)
    report = check_parity(model, ort_session(path, threads=1), bgr, rgb)
    assert report['reference'] <= 2 * 80


def padded(rgb_images, shape, seed=0):
    """Images (3, h, w) at the top left of an (N, 3, H, W) input whose rest
    is random (the graph must ignore it), and their sizes."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (len(rgb_images), 3, *shape)).astype(np.float32)
    for i, im in enumerate(rgb_images):
        x[i, :, :im.shape[-2], :im.shape[-1]] = im.numpy()
    sizes = np.array([im.shape[-2:] for im in rgb_images], np.int64)
    return x, sizes


def test_parity_at_a_size_not_a_multiple_of_32(tmp_path, shapes_val):
    """300x397: mmdet pads to 320x416 and clips to 300x397; the graph does
    the same with the images given as they are (it pads them), padded by
    the caller with anything and their sizes given, and for a batch of two
    sizes (mmdet pads both to the larger)."""
    config = table7_config('shufflenetv2', '40m')
    bgr, rgb = as_batch(shapes_val[:2], (300, 397))
    model = decisive_model(config, bgr)
    path = str(tmp_path / 'dynamic.onnx')
    export_onnx(model, path, (300, 397), batch_size=2, dynamic=True,
                debug=True)
    session = ort_session(path, threads=1)
    # The images as they are: the default img_shape (all of the input).
    check_parity(model, session, bgr, rgb)
    # Padded by the caller (with noise) to mmdet's 320x416 and to 310x400
    # (which the graph pads to 320x416), sizes given per image and as one
    # row for all.
    x, sizes = padded(rgb, (320, 416))
    check_parity(model, session, bgr, rgb, {'input': x, 'img_shape': sizes})
    x, sizes = padded(rgb, (310, 400))
    check_parity(model, session, bgr, rgb,
                 {'input': x, 'img_shape': sizes[:1]})
    # Two sizes in one batch, padded to the larger (as mmdet's batch).
    small_bgr, small_rgb = as_batch(shapes_val[2:3], (250, 333))
    bgr2 = [bgr[0], small_bgr[0]]
    x, sizes = padded([rgb[0], small_rgb[0]], (300, 397))
    check_parity(model, session, bgr2, None, {'input': x, 'img_shape': sizes})
