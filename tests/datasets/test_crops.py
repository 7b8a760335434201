"""The demo's classification set (shufflenet_det.datasets.crops) and its
command line, tools/data/make_shapes_crops.py."""
import os.path as osp
import subprocess
import sys

import cv2

from shufflenet_det.datasets import crops
from shufflenet_det.datasets.shapes import CLASSES, generate

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_crops_layout_counts_and_idempotence(tmp_path, capsys):
    data = tmp_path / 'shapes'
    summary = generate(str(data), num_train=6, num_val=1, seed=0,
                       log=lambda *a: None)
    out = tmp_path / 'crops'
    counts = crops.make_crops(str(data), str(out), background=1)
    # One crop per object, one object-free crop per image (when it fits).
    assert sum(counts.get(c, 0) for c in CLASSES) == \
        summary['train']['objects']
    assert 1 <= counts['background'] <= 6
    assert set(counts) <= set(CLASSES) | {'background'}
    for name, n in counts.items():
        files = sorted((out / 'train' / name).glob('*.png'))
        assert len(files) == n
        img = cv2.imread(str(files[0]))
        assert img is not None and min(img.shape[:2]) >= 8
    # Same dataset, same arguments: nothing rewritten.
    assert crops.make_crops(str(data), str(out)) is None
    assert 'nothing to do' in capsys.readouterr().out


def test_missing_dataset_is_one_line(tmp_path):
    run = subprocess.run(
        [sys.executable, 'tools/data/make_shapes_crops.py', '--data',
         str(tmp_path / 'none'), '--out', str(tmp_path / 'c')],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    err = run.stderr
    assert err.startswith('error: ') and 'make_shapes.py' in err
    assert len(err.strip().splitlines()) == 1
