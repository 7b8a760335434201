"""Fixtures of the deployment tests: a tiny shapes data set (the helpers
are in deploy_helpers.py: a module name of its own, since tests/tools has a
conftest.py too)."""
import glob

import pytest


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory):
    """A tiny generated shapes set: 1 train and 4 val images."""
    from shufflenet_det.datasets.shapes import generate
    root = tmp_path_factory.mktemp('data') / 'shapes'
    generate(str(root), num_train=1, num_val=4, seed=0, log=lambda *a: None)
    return root


@pytest.fixture(scope='session')
def shapes_val(shapes_root):
    """The val images of the tiny shapes set (BGR, HWC uint8)."""
    import mmcv
    return [mmcv.imread(f)
            for f in sorted(glob.glob(f'{shapes_root}/val/*'))]
