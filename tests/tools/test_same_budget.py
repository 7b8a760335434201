"""tools/analysis/same_budget.py (shufflenet_det.benchmark.same_budget) and
TrainTimeBudgetHook: detectors trained for the same minutes, then
evaluated; the demo's Faster R-CNN FPN peer."""
import json

import pytest
import torch
from cli_helpers import ROOT, run_tool, tiny_config
from mmengine.config import Config

FPN = f'{ROOT}/configs/demo/faster_rcnn_fpn_v2star_shapes.py'


def test_budget_stops_training_and_evaluates(tmp_path, shapes_root):
    cfg = tiny_config(tmp_path, shapes_root)
    work = tmp_path / 'budget'
    proc = run_tool('tools/analysis/same_budget.py', '--minutes', '0.05',
                    '--configs', cfg, '--work-dir', str(work))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    res = json.loads((work / 'same_budget.json').read_text())['results']
    assert len(res) == 1
    r = res[0]
    # 3 s of training on 160x128 images: a few iterations, not 10**7; the
    # last checkpoint is there and the final validation ran.
    assert 1 <= r['iterations'] < 200
    assert 0.0 <= r['bbox_mAP'] <= 1.0
    assert list((work / 'tiny').glob('iter_*.pth'))
    assert '| tiny.py | 0.05 |' in proc.stdout


def test_a_model_that_detects_nothing_scores_zero():
    """A detector still in its warm-up may detect nothing on the val set;
    mmdet then logs an error and no mAP. The comparison goes on with 0 for
    it, flagged, rather than stopping; a log with neither is an error that
    names the log."""
    from shufflenet_det.benchmark import same_budget as tool
    line = 'bbox_mAP_copypaste: 0.132 0.301 0.095 0.080 0.150 0.190'
    empty = ('ERROR - coco_metric.py - compute_metrics - 465 - The testing '
             'results of the whole dataset is empty.')
    assert tool.read_map(line, 'a.py', 'a.log') == (
        [0.132, 0.301, 0.095, 0.080, 0.150, 0.190], True)
    assert tool.read_map(empty, 'a.py', 'a.log') == ([0.0] * 6, False)
    # The last evaluation counts.
    assert tool.read_map(line + '\n' + empty, 'a.py', 'a.log')[1] is False
    assert tool.read_map(empty + '\n' + line, 'a.py', 'a.log')[1] is True
    with pytest.raises(RuntimeError, match='a.log'):
        tool.read_map('Traceback ...', 'a.py', 'a.log')
    row = tool.table([dict(config='x/fpn.py', minutes=4, iterations=52,
                           seconds_per_iter=4.6, bbox_mAP=0.0,
                           bbox_mAP_50=0.0, bbox_mAP_75=0.0,
                           detections=False)])
    assert '| fpn.py | 4 | 52 | 4.60 | 0.0 (no detections) | 0.0 | 0.0 |' \
        in row


def test_budget_hook_rejects_nonpositive_minutes():
    from shufflenet_det.engine import TrainTimeBudgetHook
    with pytest.raises(ValueError, match='minutes'):
        TrainTimeBudgetHook(0)


def test_fpn_peer_builds_and_trains_one_step():
    """The peer has the demo's backbone (stage2, stage3, conv5 into FPN),
    the demo's anchor range and five classes."""
    from mmengine.registry import init_default_scope

    import shufflenet_det  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    init_default_scope('mmdet')
    cfg = Config.fromfile(FPN)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'FasterRCNN'
    assert model.roi_head.bbox_head.num_classes == 5
    img = torch.rand(1, 3, 128, 160) * 255
    sample = DetDataSample(metainfo=dict(img_shape=(128, 160),
                                         pad_shape=(128, 160),
                                         batch_input_shape=(128, 160)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[20., 30., 70., 90.]]),
        labels=torch.tensor([2]))
    data = model.data_preprocessor(dict(inputs=[img[0]],
                                        data_samples=[sample]), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    loss.backward()
