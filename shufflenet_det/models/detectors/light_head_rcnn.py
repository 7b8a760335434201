import copy

import torch

from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS


@MODELS.register_module()
class LightHeadRCNN(TwoStageDetector):
    """Light-Head R-CNN (Li et al., 2017), the detector of the ShuffleNet V2
    paper's Table 7.

    Where it differs from mmdet's Faster R-CNN C4 layout
    (``faster-rcnn_r50-caffe-c4.py``): the backbone returns two features,
    and they go to different heads::

        backbone -> (C4 stride 16, C5 stride 32)
        C4 -> rpn_head (mmdet's RPNHead)                 -> proposals
        C5 -> thin_map (LargeSeparableConv, 490 ch)      -> thin feature map
        thin map + proposals -> roi_head (StandardRoIHead with
              PSRoIAlignExtractor, one fc of 2048, class and box fcs)

    The backbone's ``out_indices`` must select exactly (C4, C5), in that
    order. ``rpn_head.in_channels`` and ``thin_map.in_channels`` may be left
    None: they are then read from the backbone (its ``out_channels`` or a
    tiny forward pass), so swapping the backbone needs only the backbone
    dict.

    Args:
        backbone (dict): backbone config; out_indices -> (C4, C5).
        thin_map (dict): config of the layer making the thin feature map.
        rpn_head, roi_head, train_cfg, test_cfg, data_preprocessor,
        init_cfg: as mmdet's TwoStageDetector.
    """

    def __init__(self, backbone, thin_map, rpn_head, roi_head, train_cfg,
                 test_cfg, data_preprocessor=None, init_cfg=None):
        super().__init__(
            backbone=backbone, neck=None, rpn_head=None, roi_head=roi_head,
            train_cfg=train_cfg, test_cfg=test_cfg,
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        c4, c5 = self._feature_channels()
        rpn_head = copy.deepcopy(rpn_head)
        if rpn_head.get('in_channels') is None:
            rpn_head['in_channels'] = c4
        rpn_head.update(
            num_classes=1, test_cfg=test_cfg.rpn,
            train_cfg=train_cfg.rpn if train_cfg is not None else None)
        self.rpn_head = MODELS.build(rpn_head)
        thin_map = copy.deepcopy(thin_map)
        if thin_map.get('in_channels') is None:
            thin_map['in_channels'] = c5
        self.thin_map = MODELS.build(thin_map)

    def _feature_channels(self):
        """(C4, C5) channels of the backbone: its ``out_channels`` at its
        ``out_indices`` when it says, else from a tiny forward pass."""
        channels = getattr(self.backbone, 'out_channels', None)
        out_indices = getattr(self.backbone, 'out_indices', None)
        if channels is not None and out_indices is not None:
            channels = [channels[i] for i in out_indices]
        else:
            training = self.backbone.training
            self.backbone.eval()
            with torch.no_grad():
                channels = [f.size(1) for f in self.backbone(
                    torch.zeros(1, 3, 64, 64))]
            self.backbone.train(training)
        if len(channels) != 2:
            raise ValueError(
                f'LightHeadRCNN: the backbone ({type(self.backbone).__name__})'
                f' returns {len(channels)} feature maps; set its out_indices '
                'to select exactly two: C4 (stride 16, for the RPN) and C5 '
                '(stride 32, for the thin feature map).')
        return channels

    def extract_feat(self, batch_inputs):
        """Returns ``((C4, ), (thin map, ))``: the RPN's and the R-CNN's
        inputs. C4: (B, C4, H/16, W/16); thin map: (B, 490, H/32, W/32)."""
        c4, c5 = self.backbone(batch_inputs)
        return (c4, ), (self.thin_map(c5), )

    def _forward(self, batch_inputs, batch_data_samples):
        rpn_x, rcnn_x = self.extract_feat(batch_inputs)
        proposals = self.rpn_head.predict(
            rpn_x, batch_data_samples, rescale=False)
        return (self.roi_head.forward(rcnn_x, proposals,
                                      batch_data_samples), )

    def loss(self, batch_inputs, batch_data_samples):
        rpn_x, rcnn_x = self.extract_feat(batch_inputs)
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        # The RPN is class-agnostic: its targets are all label 0.
        rpn_samples = copy.deepcopy(batch_data_samples)
        for sample in rpn_samples:
            sample.gt_instances.labels = torch.zeros_like(
                sample.gt_instances.labels)
        rpn_losses, proposals = self.rpn_head.loss_and_predict(
            rpn_x, rpn_samples, proposal_cfg=proposal_cfg)
        losses = {(k if 'rpn' in k or 'loss' not in k else f'rpn_{k}'): v
                  for k, v in rpn_losses.items()}
        losses.update(
            self.roi_head.loss(rcnn_x, proposals, batch_data_samples))
        return losses

    def predict(self, batch_inputs, batch_data_samples, rescale=True):
        rpn_x, rcnn_x = self.extract_feat(batch_inputs)
        proposals = self.rpn_head.predict(
            rpn_x, batch_data_samples, rescale=False)
        results = self.roi_head.predict(
            rcnn_x, proposals, batch_data_samples, rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results)
