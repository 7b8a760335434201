"""ThunderNet (Qin et al., ICCV 2019) as an mmdet two-stage detector."""
import copy

import torch

from mmdet.models.detectors import TwoStageDetector
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS

from ..backbones.pretrained import check_pretrained_input
from .light_head_rcnn import _outputs_to_float32


@MODELS.register_module()
class ThunderNet(TwoStageDetector):
    """ThunderNet (Qin et al., ICCV 2019): SNet, CEM, the compact RPN, SAM
    and a PSRoIAlign R-CNN, at 320x320.

    Where it differs from mmdet's Faster R-CNN C4 layout and from
    :class:`LightHeadRCNN`: one thin map (from the CEM neck) feeds both
    stages, and the R-CNN reads it re-weighted by the RPN's feature::

        backbone -> (C4 stride 16, C5 stride 32)
        neck (ContextEnhancementModule) -> F_CEM (B, 245, H/16, W/16)
        F_CEM -> rpn_head (CompactRPNHead) -> scores, deltas, F_RPN (B, 256)
                                           -> proposals
        sam (SpatialAttentionModule): F_SAM = F_CEM * sigmoid(theta(F_RPN))
        F_SAM + proposals -> roi_head (StandardRoIHead: PSRoIAlignExtractor
              5 x 7 x 7, one 1024-d fc, class and box fcs)

    (paper Sec. 3, Fig. 2; qinzheng93/ThunderNet ``thundernet/
    ThunderNet_detector.py`` does the same with the SAM inside its RPN
    head.) F_RPN is the tensor the RPN's scores are computed from, taken
    from ``rpn_head.forward_with_features``, so the R-CNN's loss
    back-propagates through SAM into the RPN's convs (paper Sec. 3.2).

    Args:
        backbone (dict): backbone config; its out_indices -> (C4, C5).
        neck (dict): the CEM config (``ContextEnhancementModule``).
        rpn_head (dict): ``CompactRPNHead`` config (any head with
            ``forward_with_features``), fed the CEM map.
        sam (dict): ``SpatialAttentionModule`` config.
        roi_head (dict): mmdet's ``StandardRoIHead``, fed the SAM map.
        train_cfg, test_cfg, data_preprocessor, init_cfg: as mmdet's
            ``TwoStageDetector``.
    """

    def __init__(self, backbone, neck, rpn_head, sam, roi_head, train_cfg,
                 test_cfg, data_preprocessor=None, init_cfg=None):
        super().__init__(
            backbone=backbone, neck=neck, rpn_head=rpn_head,
            roi_head=roi_head, train_cfg=train_cfg, test_cfg=test_cfg,
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.sam = MODELS.build(sam)
        self._check_channels()
        # As LightHeadRCNN: float32 boxes and scores for mmcv's NMS under
        # autocast.
        self.roi_head.bbox_head.register_forward_hook(_outputs_to_float32)

    def _check_channels(self):
        """The thin map's channels must be what the RPN, SAM and the
        PSRoIAlign read; F_RPN's what SAM's theta reads."""
        thin = self.neck.out_channels
        reads = dict(rpn_head=self.rpn_head.in_channels,
                     sam=self.sam.out_channels)
        ps_channels = getattr(self.roi_head.bbox_roi_extractor,
                              'in_channels', None)
        if ps_channels is not None:
            reads['roi extractor'] = ps_channels
        wrong = {k: v for k, v in reads.items() if v != thin}
        if wrong:
            raise ValueError(f'ThunderNet: the CEM map has {thin} channels; '
                             f'{wrong} expect others')
        theta_in = self.sam.theta.conv.in_channels
        if theta_in != self.rpn_head.feat_channels:
            raise ValueError(
                f'ThunderNet: sam reads {theta_in} channels, the RPN feature '
                f'has {self.rpn_head.feat_channels}')

    def init_weights(self):
        """As mmengine's, then stop when ``data_preprocessor`` would feed
        the pretrained backbone another input than its weights were trained
        on (:func:`~..backbones.pretrained.check_pretrained_input`)."""
        super().init_weights()
        check_pretrained_input(self.backbone, self.data_preprocessor)

    def rpn_forward(self, cem_feats):
        """The RPN's scores and deltas (lists per level) and the SAM map,
        ``(F_SAM, )`` (B, 245, H/16, W/16), from ``(F_CEM, )``."""
        cls_scores, bbox_preds, rpn_feats = \
            self.rpn_head.forward_with_features(cem_feats)
        return cls_scores, bbox_preds, (self.sam(cem_feats[0],
                                                 rpn_feats[0]), )

    def _sam_and_proposals(self, batch_inputs, batch_data_samples):
        """The SAM map and the test-time proposals (``test_cfg.rpn``)."""
        cls_scores, bbox_preds, sam_feats = self.rpn_forward(
            self.extract_feat(batch_inputs))
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        proposals = self.rpn_head.predict_by_feat(
            cls_scores, bbox_preds, batch_img_metas=batch_img_metas,
            rescale=False)
        return sam_feats, proposals

    def _forward(self, batch_inputs, batch_data_samples):
        sam_feats, proposals = self._sam_and_proposals(batch_inputs,
                                                       batch_data_samples)
        return (self.roi_head.forward(sam_feats, proposals,
                                      batch_data_samples), )

    def loss(self, batch_inputs, batch_data_samples):
        cls_scores, bbox_preds, sam_feats = self.rpn_forward(
            self.extract_feat(batch_inputs))
        # As TwoStageDetector: the RPN's targets are all label 0; then what
        # mmdet's BaseDenseHead.loss_and_predict does with the head's
        # outputs.
        rpn_samples = copy.deepcopy(batch_data_samples)
        for sample in rpn_samples:
            sample.gt_instances.labels = torch.zeros_like(
                sample.gt_instances.labels)
        gt_instances, gt_instances_ignore, img_metas = unpack_gt_instances(
            rpn_samples)
        rpn_losses = self.rpn_head.loss_by_feat(
            cls_scores, bbox_preds, gt_instances, img_metas,
            gt_instances_ignore)
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        proposals = self.rpn_head.predict_by_feat(
            cls_scores, bbox_preds, batch_img_metas=img_metas,
            cfg=proposal_cfg)
        # Name the RPN's losses loss_rpn_* as TwoStageDetector does.
        losses = {(f'rpn_{k}' if 'loss' in k and 'rpn' not in k else k): v
                  for k, v in rpn_losses.items()}
        losses.update(
            self.roi_head.loss(sam_feats, proposals, batch_data_samples))
        return losses

    def predict(self, batch_inputs, batch_data_samples, rescale=True):
        sam_feats, proposals = self._sam_and_proposals(batch_inputs,
                                                       batch_data_samples)
        results = self.roi_head.predict(
            sam_feats, proposals, batch_data_samples, rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results)
