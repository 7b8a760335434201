"""Nothing read from a checkpoint runs: its saved config is parsed as data,
and checkpoints from URLs go through the weights-only unpickler as local
files do. Each payload below would create a file if it ran."""
import functools
import http.server
import os.path as osp
import pickle
import sys
import threading

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import shufflenet_det  # noqa: F401
from mmdet.registry import MODELS
from shufflenet_det import table7
from shufflenet_det.models.backbones.pretrained import (InputMismatchError,
                                                       checkpoint_input)
from shufflenet_det.utils.literal_config import (NOT_LITERAL,
                                                 literal_assignments)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CELL = osp.join(ROOT, 'configs', 'table7', 'lighthead_shufflenetv2_40m.py')
#: the input the ShuffleNet v2 cells feed their backbone
CELL_INPUT = ("data_preprocessor = dict(type='DetDataPreprocessor', "
              "mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], "
              "bgr_to_rgb=True)\n")
RAW_BGR_INPUT = ("data_preprocessor = dict(mean=[0., 0., 0.], "
                 "std=[1., 1., 1.], bgr_to_rgb=False)\n")


def payloads(marker, tmp_path):
    """Config texts, each of which creates ``marker`` when executed as a
    ``.py`` config (Config.fromstring), in different places."""
    module = tmp_path / 'payload_module.py'
    module.write_text(f'open({str(marker)!r}, "w").close()\n')
    return {
        'statement': f'open({str(marker)!r}, "w").close()\n' + CELL_INPUT,
        'import': f'import os\nos.system("touch {marker}")\n' + CELL_INPUT,
        'in the value': (
            "data_preprocessor = dict(mean=__import__('os').system("
            f"'touch {marker}') or [0., 0., 0.], std=[1., 1., 1.], "
            'bgr_to_rgb=False)\n'),
        'custom_imports': (
            f'custom_imports = dict(imports=["payload_module"], '
            f'allow_failed_imports=False)\n' + CELL_INPUT),
    }


def cell_with_checkpoint(path):
    cfg = Config.fromfile(CELL)
    cfg.model.backbone.init_cfg.checkpoint = path
    return cfg


def build_and_load(cfg):
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MODELS.build(cfg.model)
        detector.init_weights()
    return detector


@pytest.fixture
def backbone_state():
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        net = MODELS.build(table7.backbone_cfg('shufflenetv2', '40M'))
    return net.state_dict()


@pytest.mark.parametrize('where', ['statement', 'import', 'in the value',
                                   'custom_imports'])
def test_a_saved_config_is_not_run(tmp_path, monkeypatch, backbone_state,
                                   where):
    marker = tmp_path / 'ran'
    monkeypatch.syspath_prepend(str(tmp_path))  # payload_module importable
    text = payloads(marker, tmp_path)[where]
    ckpt = str(tmp_path / 'epoch_300.pth')
    torch.save(dict(state_dict=backbone_state, meta=dict(cfg=text)), ckpt)
    detector = build_and_load(cell_with_checkpoint(ckpt))
    assert not marker.exists(), f'the payload ({where}) ran'
    sys.modules.pop('payload_module', None)
    loaded = detector.backbone.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in backbone_state.items())
    # What the text says as data is still read: the stated input is the
    # cell's, except where the payload is the value (then: not stated).
    said = checkpoint_input(dict(meta=dict(cfg=text)), None)
    if where == 'in the value':
        assert said is None
    else:
        assert said['bgr_to_rgb'] is True
        assert said['mean'] == (123.675, 116.28, 103.53)


def test_the_input_stated_as_data_is_still_checked(tmp_path, backbone_state):
    """A literal data_preprocessor in meta['cfg'] that disagrees with the
    cell's still stops the run (the check did not go away with exec)."""
    ckpt = str(tmp_path / 'epoch_300.pth')
    torch.save(dict(state_dict=backbone_state,
                    meta=dict(cfg='x = 1\n' + RAW_BGR_INPUT)), ckpt)
    with pytest.raises(InputMismatchError, match='bgr_to_rgb'):
        build_and_load(cell_with_checkpoint(ckpt))


def test_literal_assignments_read_what_mmengine_writes():
    """mmengine saves Config.pretty_text: parsed as data it gives the same
    values as executing it (here the cell's whole config)."""
    cfg = Config.fromfile(CELL)
    found = literal_assignments(cfg.pretty_text)
    assert found['model'] == cfg.model.to_dict()
    assert found['optim_wrapper'] == cfg.optim_wrapper.to_dict()
    text = 'a = dict(b=[1, -2.5, (3, None)], c={"k": f(1)})\nd = e\n'
    found = literal_assignments(text)
    assert found['a']['b'] == [1, -2.5, (3, None)]
    assert found['a']['c']['k'] is NOT_LITERAL and found['d'] is NOT_LITERAL


# ------------------------------------------------- checkpoints from a URL
class Payload:
    """Unpickling this creates the file ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


@pytest.fixture
def http_dir(tmp_path, monkeypatch):
    """A local HTTP server over tmp_path/'www'; torch.hub's cache in
    tmp_path/'hub'."""
    www = tmp_path / 'www'
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(www))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    old_hub = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / 'hub'))
    yield www, f'http://127.0.0.1:{server.server_address[1]}'
    torch.hub.set_dir(old_hub)
    server.shutdown()


def test_a_url_checkpoint_is_unpickled_weights_only(tmp_path, http_dir,
                                                    backbone_state):
    www, url = http_dir
    marker = tmp_path / 'ran'
    torch.save(dict(state_dict=backbone_state, meta=dict(x=Payload(
        str(marker)))), str(www / 'evil.pth'))
    with pytest.raises(pickle.UnpicklingError, match='evil.pth'):
        build_and_load(cell_with_checkpoint(f'{url}/evil.pth'))
    assert not marker.exists()
    # A checkpoint of tensors from the same server loads.
    torch.save(dict(state_dict=backbone_state), str(www / 'good.pth'))
    detector = build_and_load(cell_with_checkpoint(f'{url}/good.pth'))
    loaded = detector.backbone.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in backbone_state.items())
