"""The graph's metadata (``shufflenet_det.deploy.export.METADATA_KEY``):
written at export (what the graph computes with: test_cfg, normalisation,
channel order, padding, classes, pooling), read back as data, and compared
with a config by ``check_graph``, which the tools that run a graph call: a
config that disagrees is refused with the field, both values and what to
do."""
import pytest
from deploy_helpers import table7_config

from shufflenet_det.deploy import DeployError, LightHeadRCNNExport, export_onnx
from shufflenet_det.deploy.export import (METADATA_KEY, check_graph,
                                          config_classes, config_metadata,
                                          read_metadata, write_metadata)
from shufflenet_det.apis.detector import build_detector

pytest.importorskip('onnx')
CONFIG = table7_config('shufflenetv2', '40m')


@pytest.fixture(scope='module')
def graph(tmp_path_factory):
    """A graph of CONFIG (random weights, 100x130) with its class names."""
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    model = build_detector(CONFIG)
    path = str(tmp_path_factory.mktemp('meta') / 'model.onnx')
    export_onnx(model, path, (100, 130), classes=config_classes(cfg))
    return path, model


def config(**options):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(options)
    init_default_scope('mmdet')
    return cfg


def test_round_trip(graph):
    path, model = graph
    meta = read_metadata(path)
    classes = config_classes(config())
    assert meta == LightHeadRCNNExport(model).metadata(classes)
    assert meta['test_cfg'] == dict(
        rpn=dict(nms_pre=6000, max_per_img=1000,
                 nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0),
        rcnn=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                  max_per_img=100))
    assert meta['classes'] == classes and len(classes) == 80
    # What a config says is what the graph has: accepted.
    ours = config_metadata(config())
    assert {k: meta[k] for k in ours if k != 'preprocess'} == {
        k: v for k, v in ours.items() if k != 'preprocess'}
    assert check_graph(config(), path) == meta


@pytest.mark.parametrize('options,key,graph_value,config_value', [
    ({'model.test_cfg.rcnn.score_thr': 0.05},
     'model.test_cfg.rcnn.score_thr', '0.0', '0.05'),
    ({'model.test_cfg.rpn.nms.iou_threshold': 0.6},
     'model.test_cfg.rpn.nms.iou_threshold', '0.7', '0.6'),
    ({'model.test_cfg.rcnn.max_per_img': 50},
     'model.test_cfg.rcnn.max_per_img', '100', '50'),
    ({'model.data_preprocessor.std': [1.0, 1.0, 1.0]},
     'model.data_preprocessor.std[0]', '58.395', '1.0'),
    ({'model.data_preprocessor.bgr_to_rgb': False},
     'model.data_preprocessor.bgr_to_rgb', 'true', 'false'),
    ({'model.data_preprocessor.pad_value': 114},
     'model.data_preprocessor.pad_value', '0.0', '114.0'),
    ({'model.roi_head.bbox_roi_extractor.pool_mode': 'avg'},
     'model.roi_head.bbox_roi_extractor.pool_mode', '"max"', '"avg"'),
    ({'test_dataloader.dataset.metainfo': dict(classes=[str(i) for i in
                                                        range(80)])},
     'test_dataloader.dataset.metainfo.classes[0]', '"person"', '"0"'),
])
def test_a_disagreeing_config_is_refused(graph, options, key, graph_value,
                                         config_value):
    path, _ = graph
    with pytest.raises(DeployError) as e:
        check_graph(config(**options), path)
    msg = str(e.value)
    assert msg.startswith(f'{path} was exported with {key} = {graph_value}, '
                          f'the config has {config_value}'), msg
    assert 'Export the graph again from this config' in msg
    assert '\n' not in msg


def test_other_class_count_and_old_graphs_refused(graph, tmp_path):
    import onnx
    path, _ = graph
    with pytest.raises(DeployError, match='exported from a detector of 80 '
                       'classes, the config has 5'):
        check_graph(config(**{'model.roi_head.bbox_head.num_classes': 5}),
                    path)
    model = onnx.load(path)
    # Without metadata (an older export): refused.
    del model.metadata_props[:]
    old = str(tmp_path / 'old.onnx')
    onnx.save(model, old)
    with pytest.raises(DeployError, match='no shufflenet_det.graph metadata'
                       '.*export it again'):
        check_graph(config(), old)
    # Another format: refused. Values are data (json.loads), never code.
    meta = read_metadata(path)
    meta.update(format=2, pool_mode="__import__('os').getcwd()")
    write_metadata(model, meta)
    onnx.save(model, old)
    assert read_metadata(old)['pool_mode'] == "__import__('os').getcwd()"
    assert [e.key for e in onnx.load(old).metadata_props] == [METADATA_KEY]
    with pytest.raises(DeployError, match='metadata format 2, this version '
                       'reads 1'):
        check_graph(config(), old)
