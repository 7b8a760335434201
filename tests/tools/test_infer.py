"""shufflenet_det.apis.inference and tools/infer.py: a checkpoint of the
tiny demo-derived config (a freshly built model saved as mmengine's Runner
saves it) on an image, a folder and a list file, through mmdet's
DetInferencer; pictures and JSON predictions written; errors that say what
to do, one line on the command line."""
import json
import os.path as osp
import shutil

import pytest
import torch
from cli_helpers import run_tool, tiny_config

from shufflenet_det.apis.inference import InferError, run_inference

CLASSES = ('circle', 'rectangle', 'triangle', 'star', 'cross')


@pytest.fixture(scope='module')
def trained(tmp_path_factory, shapes_root):
    """(config, checkpoint): the model's own initialisation (seeded), saved
    with the dataset meta a Runner checkpoint carries."""
    from mmengine.config import Config
    from shufflenet_det.apis.detector import build_detector
    tmp = tmp_path_factory.mktemp('infer')
    config = tiny_config(tmp, shapes_root)
    model = build_detector(Config.fromfile(config), seed=0)
    ckpt = tmp / 'iter_6.pth'
    torch.save({'meta': {'dataset_meta': {'classes': CLASSES}},
                'state_dict': model.state_dict()}, ckpt)
    return config, str(ckpt)


def val_images(shapes_root):
    return sorted((shapes_root / 'val').glob('*.jpg'))


def check_outputs(out_dir, names):
    for name in names:
        vis = out_dir / 'vis' / name
        assert vis.is_file() and vis.stat().st_size > 0, vis
        pred = json.loads((out_dir / 'preds' /
                           (osp.splitext(name)[0] + '.json')).read_text())
        n = len(pred['scores'])
        assert len(pred['bboxes']) == n and len(pred['labels']) == n
        assert all(len(b) == 4 for b in pred['bboxes'])
        assert all(0 <= lb < len(CLASSES) for lb in pred['labels'])


def test_image_folder_and_list(trained, shapes_root, tmp_path):
    config, ckpt = trained
    images = val_images(shapes_root)
    assert len(images) == 4

    # One image, through the command line.
    out = tmp_path / 'one'
    proc = run_tool('tools/infer.py', config, ckpt, str(images[0]),
                    '--out-dir', str(out), '--score-thr', '0.1')
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_outputs(out, [images[0].name])
    scores = json.loads((out / 'preds' / (images[0].stem + '.json'))
                        .read_text())['scores']
    shown = sum(s >= 0.1 for s in scores)
    line = proc.stdout.strip().splitlines()[-1]
    assert line == (f'1 image(s), {shown} detection(s) with score >= 0.1: '
                    f'pictures in {out / "vis"}, predictions in '
                    f'{out / "preds"}')

    # A folder (a file that is not an image is left out).
    folder = tmp_path / 'frames'
    shutil.copytree(shapes_root / 'val', folder)
    (folder / 'notes.txt').write_text('not an image')
    out = tmp_path / 'folder'
    paths, preds = run_inference(config, ckpt, [str(folder)], str(out),
                                 score_thr=0.1, device='cpu')
    check_outputs(out, [p.name for p in images])
    assert [osp.basename(p) for p in paths] == [p.name for p in images]
    assert len(preds) == 4
    for path, pred in zip(paths, preds):
        written = json.loads((out / 'preds' / (osp.splitext(
            osp.basename(path))[0] + '.json')).read_text())
        assert written['scores'] == pytest.approx(pred['scores'])

    # A list file: relative paths from its folder, comments and blanks.
    listing = tmp_path / 'frames.txt'
    listing.write_text(f'# two frames\n\nframes/{images[2].name}\n'
                       f'{folder / images[1].name}\n')
    out = tmp_path / 'list'
    paths, _ = run_inference(config, ckpt, [str(listing)], str(out),
                             device='cpu')
    assert [osp.basename(p) for p in paths] == [images[2].name,
                                                images[1].name]
    check_outputs(out, [images[2].name, images[1].name])
    assert sorted(p.name for p in (out / 'vis').iterdir()) == sorted(
        [images[1].name, images[2].name])


def error_of(config, ckpt, *inputs, out):
    """The message of the InferError that ``run_inference`` stops with."""
    with pytest.raises(InferError) as exc:
        run_inference(config, ckpt, list(inputs), out, device='cpu')
    return str(exc.value)


def test_errors(trained, shapes_root, tmp_path):
    config, ckpt = trained
    image = str(val_images(shapes_root)[0])
    out = str(tmp_path / 'out')

    err = error_of(str(tmp_path / 'no.py'), ckpt, image, out=out)
    assert 'config' in err and 'no.py not found' in err
    err = error_of(config, str(tmp_path / 'no.pth'), image, out=out)
    assert 'checkpoint' in err and 'no.pth not found' in err
    err = error_of(config, ckpt, str(tmp_path / 'no.jpg'), out=out)
    assert 'no.jpg: no such image, folder or list file' in err

    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'readme.md').write_text('x')
    err = error_of(config, ckpt, str(empty), out=out)
    assert f'{empty}: no image in this folder' in err

    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'')
    err = error_of(config, ckpt, str(broken), out=out)
    assert f'{broken}: cannot be read as an image: empty file' in err
    broken.write_bytes(b'this is not a JPEG at all' * 10)
    err = error_of(config, ckpt, str(broken), out=out)
    assert 'unknown format or corrupt header' in err

    listing = tmp_path / 'list.txt'
    listing.write_text(f'{image}\nmissing/frame_001.jpg\n')
    err = error_of(config, ckpt, str(listing), out=out)
    assert f'{listing}, line 2: missing/frame_001.jpg not found' in err

    video = tmp_path / 'video.mp4'
    video.write_bytes(b'\0' * 100)
    err = error_of(config, ckpt, str(video), out=out)
    assert 'ffmpeg' in err

    twin = tmp_path / 'other'
    twin.mkdir()
    shutil.copy(image, twin)
    err = error_of(config, ckpt, image, str(twin), out=out)
    assert 'same file name' in err

    # A checkpoint of another model: refused, not loaded half-way.
    state = torch.load(ckpt, weights_only=False)
    state['state_dict'] = {k: v for k, v in state['state_dict'].items()
                           if not k.startswith('roi_head')}
    partial = tmp_path / 'partial.pth'
    torch.save(state, partial)
    err = error_of(config, str(partial), image, out=out)
    assert 'does not fit' in err and 'keys missing' in err

    (tmp_path / 'truncated.pth').write_bytes(open(ckpt, 'rb').read()[:1000])
    err = error_of(config, str(tmp_path / 'truncated.pth'), image,
                   out=out)
    assert 'cannot be loaded' in err
    assert not (tmp_path / 'out' / 'vis').exists()


def test_error_on_the_command_line_is_one_line(trained, tmp_path):
    """The command line says an InferError in one line, exit status 1, no
    traceback."""
    config, ckpt = trained
    proc = run_tool('tools/infer.py', config, ckpt, str(tmp_path / 'no.jpg'),
                    '--out-dir', str(tmp_path / 'out'), '--device', 'cpu')
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == (f'error: {tmp_path / "no.jpg"}: no such image, '
                        'folder or list file')
    assert lines[1].startswith('Run again with --debug')
    assert not (tmp_path / 'out').exists()


def test_exif_rotated_jpeg_is_drawn_as_stored(trained, tmp_path):
    """With the project's color_type='color_ignore_orientation', the boxes
    refer to the stored pixels; the picture is drawn on those pixels too
    (DetInferencer alone would draw on the EXIF-rotated image)."""
    import cv2
    import numpy as np
    from PIL import Image
    config, ckpt = trained
    child = tmp_path / 'stored.py'
    child.write_text(f'''_base_ = [{config!r}]
test_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile', color_type='color_ignore_orientation'),
    dict(type='Resize', scale=(160, 128), keep_ratio=True),
    dict(type='PackDetInputs')]))
''')
    photo = tmp_path / 'photo.jpg'
    pixels = np.random.RandomState(0).randint(0, 255, (48, 64, 3), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    Image.fromarray(pixels).save(photo, exif=exif)
    assert cv2.imread(str(photo)).shape[:2] == (64, 48)  # OpenCV rotates

    out = tmp_path / 'out'
    _, preds = run_inference(str(child), ckpt, [str(photo)], str(out),
                             score_thr=0, device='cpu')
    assert cv2.imread(str(out / 'vis' / 'photo.jpg')).shape[:2] == (48, 64)
    boxes = np.array(preds[0]['bboxes']).reshape(-1, 4)
    assert len(boxes) and (boxes[:, 2] <= 64).all() and \
        (boxes[:, 3] <= 48).all()


@pytest.fixture(scope='module')
def graph(trained, shapes_root, tmp_path_factory):
    """(checkpoint, graph): the fixture's detector with decisive heads
    (deploy_helpers.decisive_model: random weights would give 100 near-tied
    scores, whose order float rounding decides), saved, and exported to one
    dynamic ONNX graph with its class names as
    tools/deployment/export_onnx.py writes it."""
    import mmcv
    from deploy_helpers import as_batch, decisive_model

    from shufflenet_det.deploy import export_onnx
    config, _ = trained
    bgr, _ = as_batch([mmcv.imread(str(p))
                       for p in val_images(shapes_root)[:2]], (128, 160))
    model = decisive_model(config, bgr)
    tmp = tmp_path_factory.mktemp('infer_graph')
    ckpt = tmp / 'decisive.pth'
    torch.save({'meta': {'dataset_meta': {'classes': CLASSES}},
                'state_dict': model.state_dict()}, ckpt)
    path = tmp / 'tiny.onnx'
    export_onnx(model, str(path), (128, 160), dynamic=True, classes=CLASSES)
    return str(ckpt), str(path)


@pytest.mark.parametrize('backend', ['onnxruntime', 'openvino'])
def test_graph_draws_and_writes_what_the_checkpoint_does(
        trained, graph, shapes_root, tmp_path, backend):
    """An exported graph through tools/infer.py (ONNX Runtime, or OpenVINO
    f32): the same pictures and JSON files as the checkpoint, holding the
    same detections (matched box by box)."""
    import numpy as np

    from shufflenet_det.deploy.parity import match_detections
    pytest.importorskip(backend)
    config, _ = trained
    ckpt, graph = graph
    images = [str(p) for p in val_images(shapes_root)[:2]]
    _, ref = run_inference(config, ckpt, images, str(tmp_path / 'pt'),
                           score_thr=0.05, device='cpu')
    out = tmp_path / backend
    proc = run_tool('tools/infer.py', config, graph, *images, '--out-dir',
                    str(out), '--score-thr', '0.05', '--backend', backend,
                    '--threads', '1')
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_outputs(out, [osp.basename(p) for p in images])
    for path, r in zip(images, ref):
        g = json.loads((out / 'preds' / (osp.splitext(osp.basename(path))[0]
                                         + '.json')).read_text())
        assert len(r['scores']) > 0

        def padded(p):
            return (np.c_[np.reshape(p['bboxes'], (-1, 4)),
                          p['scores']][None], np.array([p['labels']]))
        m = match_detections(*padded(r), *padded(g), iou_thr=0.99,
                             score_tol=1e-3)
        assert m['matched'] == m['reference'] == m['other'], (path, m)


def test_graph_errors(trained, graph, shapes_root, tmp_path):
    """A graph with --device cuda, --backend with a .pth, an int8 IR in ONNX
    Runtime and a graph of another detector: one line saying what to do."""
    config, ckpt = trained
    graph = graph[1]
    image = str(val_images(shapes_root)[0])
    out = str(tmp_path / 'out')
    with pytest.raises(InferError, match='runs on the CPU; use --device cpu'):
        run_inference(config, graph, [image], out, device='cuda')
    with pytest.raises(InferError, match=r'--backend openvino runs an '
                       r'exported graph \(.onnx or .xml\)'):
        run_inference(config, ckpt, [image], out, device='cpu',
                      backend='openvino')
    ir = tmp_path / 'tiny_int8.xml'
    ir.write_text('<net/>')
    with pytest.raises(InferError, match='is an OpenVINO IR: run it '
                       'with --backend openvino'):
        run_inference(config, str(ir), [image], out, backend='onnxruntime')
    other = tmp_path / 'other.py'
    other.write_text(f'_base_ = [{config!r}]\n'
                     "model = dict(roi_head=dict(bbox_head=dict("
                     "num_classes=7)))\n")
    with pytest.raises(InferError, match='a detector of 5 classes, the '
                       'config has 7'):
        run_inference(str(other), graph, [image], out)
    assert not (tmp_path / 'out' / 'vis').exists()
