import pytest


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory):
    """A tiny shapes dataset: 8 train and 4 val images."""
    from shufflenet_det.datasets.shapes import generate
    root = tmp_path_factory.mktemp('data') / 'shapes'
    generate(str(root), num_train=8, num_val=4, seed=0, log=lambda *a: None)
    return root
