import copy

import torch

from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS

from ..backbones.pretrained import check_pretrained_input


def _outputs_to_float32(module, args, outputs):
    return tuple(o.float() if torch.is_tensor(o) and o.is_floating_point()
                 else o for o in outputs)


@MODELS.register_module()
class LightHeadRCNN(TwoStageDetector):
    """Light-Head R-CNN (Li et al., 2017), the detector of the ShuffleNet V2
    paper's Table 7 (Sec. 4.2).

    Where it differs from mmdet's Faster R-CNN C4 layout
    (``faster-rcnn_r50-caffe-c4.py``): there is no shared R-CNN head on C4;
    the backbone returns two features and they go to different heads::

        backbone -> (C4 stride 16, C5 stride 32)
        C4 -> rpn_head (mmdet's RPNHead)                  -> proposals
        C5 -> thin_map (LargeSeparableConv, 10 x 7 x 7 ch) -> thin feature map
        thin map + proposals -> roi_head (StandardRoIHead with
              PSRoIAlignExtractor and one 2048-d fc, then class and box fcs)

    The backbone's ``out_indices`` must select exactly (C4, C5), in that
    order. ``rpn_head.in_channels`` and ``thin_map.in_channels`` may be left
    None: they are then read from a tiny forward pass of the backbone at
    build time, which also checks that the two features' strides are the
    RPN's anchor stride and the RoI extractor's stride. Swapping the backbone
    thus needs only the backbone dict.

    Args:
        backbone (dict): backbone config; its out_indices -> (C4, C5).
        thin_map (dict): config of the layer making the thin feature map
            from C5 (``LargeSeparableConv``).
        rpn_head (dict): RPN config (mmdet's ``RPNHead``), fed C4 only.
        roi_head (dict): R-CNN config (mmdet's ``StandardRoIHead``), fed the
            thin map only.
        channels_last (bool): ``extract_feat`` hands the backbone the batch
            in channels-last (NHWC) memory; the layers that keep the layout
            run on it (in ShuffleNet, the stem and the first units, up to
            the first channel shuffle). Same results up to fp32 rounding.
            On CPU (oneDNN) it made a training iteration of the embedded
            demo 7-8% faster (0.439 -> 0.406 s and 0.500 -> 0.464 s, 2
            cores, the same batches alternated; the stem alone: 52 -> 39 ms
            forward + backward); converting the whole network, weights
            included, gained no more. Not measured on GPU; exports
            (``shufflenet_det.deploy``) do not use it. Default: False.
        train_cfg, test_cfg, data_preprocessor, init_cfg: as mmdet's
            ``TwoStageDetector``.
    """

    def __init__(self, backbone, thin_map, rpn_head, roi_head, train_cfg,
                 test_cfg, data_preprocessor=None, init_cfg=None,
                 channels_last=False):
        super().__init__(
            backbone=backbone, neck=None, rpn_head=None, roi_head=roi_head,
            train_cfg=train_cfg, test_cfg=test_cfg,
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        (c4_channels, c5_channels), strides = self._probe_backbone()

        rpn_head = copy.deepcopy(rpn_head)
        if rpn_head.get('in_channels') is None:
            rpn_head['in_channels'] = c4_channels
        # As TwoStageDetector: the RPN is class-agnostic.
        rpn_head.update(
            num_classes=1, test_cfg=test_cfg.rpn,
            train_cfg=train_cfg.rpn if train_cfg is not None else None)
        self.rpn_head = MODELS.build(rpn_head)

        thin_map = copy.deepcopy(thin_map)
        if thin_map.get('in_channels') is None:
            thin_map['in_channels'] = c5_channels
        self.thin_map = MODELS.build(thin_map)
        self._check_layout(strides)
        self.channels_last = channels_last
        # Under autocast (fp16 inference, --amp) the box head's outputs are
        # float16, and so the boxes and scores that reach mmcv's NMS, whose
        # kernels take float32 only ("expected scalar type Float but found
        # Half"). Cast them back, as mmdet 2.x's @force_fp32 on BBoxHead did.
        self.roi_head.bbox_head.register_forward_hook(_outputs_to_float32)

    @torch.no_grad()
    def _probe_backbone(self, size=128):
        """Channels and strides of the backbone's two features, from one
        forward pass of a ``size`` x ``size`` zero image (in eval mode, so
        that BN statistics are untouched)."""
        training = self.backbone.training
        self.backbone.eval()
        feats = self.backbone(torch.zeros(1, 3, size, size))
        self.backbone.train(training)
        if len(feats) != 2:
            raise ValueError(
                f'LightHeadRCNN: the backbone ({type(self.backbone).__name__})'
                f' returns {len(feats)} feature maps; set its out_indices to '
                'select exactly two: C4 (stride 16, for the RPN) and C5 '
                '(stride 32, for the thin feature map).')
        return ([f.size(1) for f in feats],
                [size // f.size(-1) for f in feats])

    def _check_layout(self, strides):
        """The strides the heads are configured for must be those of the
        features they receive; the thin map must have the channels the
        PSRoI pooling expects."""
        rpn_stride = self.rpn_head.prior_generator.strides[0][0]
        extractor = self.roi_head.bbox_roi_extractor
        expected = (rpn_stride, extractor.featmap_strides[0])
        if tuple(strides) != expected:
            raise ValueError(
                f'LightHeadRCNN: the backbone\'s features have strides '
                f'{tuple(strides)}, but the RPN anchors and the RoI extractor '
                f'are configured for {expected}; check the backbone\'s '
                'out_indices (C4, C5) or the heads\' strides.')
        ps_channels = getattr(extractor, 'in_channels', None)
        if ps_channels is not None and \
                self.thin_map.out_channels != ps_channels:
            raise ValueError(
                f'LightHeadRCNN: thin_map.out_channels is '
                f'{self.thin_map.out_channels}, the RoI extractor reads '
                f'{ps_channels} channels.')

    def init_weights(self):
        """As mmengine's, then stop when ``data_preprocessor`` would feed
        the pretrained backbone another input than its weights were trained
        on (:func:`~..backbones.pretrained.check_pretrained_input`)."""
        super().init_weights()
        check_pretrained_input(self.backbone, self.data_preprocessor)

    def extract_feat(self, batch_inputs):
        """Returns ``((C4, ), (thin map, ))``, the RPN's and the R-CNN's
        inputs: (B, C4, H/16, W/16) and (B, 490, H/32, W/32)."""
        if self.channels_last:
            batch_inputs = batch_inputs.contiguous(
                memory_format=torch.channels_last)
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
        # As TwoStageDetector: the RPN's targets are all label 0.
        rpn_samples = copy.deepcopy(batch_data_samples)
        for sample in rpn_samples:
            sample.gt_instances.labels = torch.zeros_like(
                sample.gt_instances.labels)
        rpn_losses, proposals = self.rpn_head.loss_and_predict(
            rpn_x, rpn_samples, proposal_cfg=proposal_cfg)
        # Name the RPN's losses loss_rpn_* as TwoStageDetector does.
        losses = {(f'rpn_{k}' if 'loss' in k and 'rpn' not in k else k): v
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
