"""Dirty datasets through tools/train.py: inconsistent annotation files are
refused before training, undecodable training images are skipped with a
warning per file and a count (also with several data-loader workers), an
undecodable validation image stops the run with one line and a complete
checkpoint that --resume continues from (docs/robustness.md)."""
import json
import shutil

import pytest
import torch

from cli_helpers import run_tool, tiny_config
from dirty_images import STORED_SIZE, garble, write_formats


@pytest.fixture
def dataset(tmp_path, shapes_root):
    root = tmp_path / 'shapes'
    shutil.copytree(shapes_root, root)
    return root


def config(tmp_path, data_root, text=''):
    """tiny_config with the training pipeline that skips unreadable images."""
    base = tmp_path / 'skip.py'
    base.write_text(f'''
_base_ = [{tiny_config(tmp_path, data_root)!r}]
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFileOrSkip',
         color_type='color_ignore_orientation'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(160, 128), keep_ratio=True),
    dict(type='PackDetInputs')]))
''')
    path = tmp_path / 'dirty.py'
    path.write_text(f'_base_ = [{str(base)!r}]\n' + text)
    return str(path)


def train(tmp_path, cfg, *options):
    return run_tool('tools/train.py', cfg, '--work-dir',
                    str(tmp_path / 'work'), *options)


def assert_clean_error(proc, *needles):
    assert proc.returncode == 1, (proc.stdout + proc.stderr)[-3000:]
    assert 'Traceback' not in proc.stdout + proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr[-3000:]


def test_unknown_category_is_refused_before_training(tmp_path, dataset):
    ann_path = dataset / 'annotations' / 'instances_train.json'
    data = json.loads(ann_path.read_text())
    data['annotations'][3]['category_id'] = 77
    ann_path.write_text(json.dumps(data))
    proc = train(tmp_path, config(tmp_path, dataset))
    assert_clean_error(
        proc, 'instances_train.json', 'is inconsistent',
        f"annotation {data['annotations'][3]['id']} -> category 77",
        "not in 'categories'")
    assert not (tmp_path / 'work' / 'iter_2.pth').exists()


def test_check_images_lists_unreadable_images_before_the_run(tmp_path,
                                                             dataset):
    victim = sorted((dataset / 'val').iterdir())[2]
    garble(victim, keep=20)
    proc = train(tmp_path, config(tmp_path, dataset), '--check-images')
    assert_clean_error(proc, 'val_dataloader.dataset', victim.name,
                       '1 of the 4 images', 'cannot be read',
                       'corrupt header')


def test_undecodable_training_images_are_skipped_with_workers(tmp_path,
                                                              dataset):
    """Two garbled images and one of each format seen in the wild in the
    training set, two worker processes: the run ends normally, each garbled
    image is named once, the count is logged, every other image loads."""
    train_dir = dataset / 'train'
    bad = sorted(train_dir.iterdir())[2:4]
    for path in bad:
        garble(path)
    ann_path = dataset / 'annotations' / 'instances_train.json'
    data = json.loads(ann_path.read_text())
    cat = data['categories'][0]['id']
    for i, (name, path) in enumerate(write_formats(tmp_path / 'formats')
                                     .items()):
        shutil.copy(path, train_dir / path.name)
        h, w = STORED_SIZE[name]
        data['images'].append(dict(id=1000 + i, file_name=path.name,
                                   width=w, height=h))
        data['annotations'].append(dict(
            id=1000 + i, image_id=1000 + i, category_id=cat, iscrowd=0,
            bbox=[0, 0, w, h], area=w * h))
    ann_path.write_text(json.dumps(data))

    cfg = config(tmp_path, dataset, '''
train_dataloader = dict(num_workers=2, persistent_workers=True)
train_cfg = dict(max_iters=8)
''')
    proc = train(tmp_path, cfg)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'Traceback' not in out
    for path in bad:
        assert out.count(f'Skipping unreadable image {path}') == 1, out[-3000:]
    assert out.count('Skipping unreadable image') == 2
    assert 'Training ended with 2 unreadable image(s) skipped' in out
    record = tmp_path / 'work' / 'unreadable_images.txt'
    assert sorted(line.split('\t')[0] for line in
                  record.read_text().splitlines()) == sorted(map(str, bad))
    assert (tmp_path / 'work' / 'iter_8.pth').exists()


def test_undecodable_val_image_stops_cleanly_and_resume_continues(
        tmp_path, dataset, shapes_root):
    victim = sorted((dataset / 'val').iterdir())[1]
    garble(victim)  # header intact: the default pre-flight passes
    cfg = config(tmp_path, dataset, '''
train_cfg = dict(val_interval=4)
val_dataloader = dict(num_workers=2)
test_dataloader = val_dataloader
''')
    work = tmp_path / 'work'
    proc = train(tmp_path, cfg)
    assert_clean_error(proc, f'failed to load image: {victim}',
                       'DataLoader worker process',
                       'remove it from the annotation file')
    assert len(proc.stderr.strip().splitlines()[-2:]) == 2
    # What was written before the stop is complete.
    ckpt = torch.load(work / 'iter_4.pth', map_location='cpu',
                      weights_only=False)
    assert ckpt['meta']['iter'] == 4 and ckpt['state_dict']
    log = next(work.glob('*/*.log')).read_text()
    assert 'Iter(train) [4/6]' in log and 'Saving checkpoint at 4' in log
    assert 'Traceback' in (work / 'error.log').read_text()

    shutil.copy(shapes_root / 'val' / victim.name, victim)  # fixed
    proc = train(tmp_path, cfg, '--resume')
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'resumed' in out.lower()
    assert (work / 'iter_6.pth').exists() and 'coco/bbox_mAP' in out
