"""The whole detector (Light-Head R-CNN or ThunderNet) as one module that
``torch.onnx.export`` traces into one ONNX graph, from images to padded
detections.

Interface (mmdeploy's mmdet convention, with the image size as an input):

- input ``input``: float32 (N, 3, H, W), RGB pixel values 0-255, any H and
  W; image i at the top left, ``img_shape[i]`` its size, anything beyond
  it (the padding of a batch of images of different sizes) is ignored;
- input ``img_shape``: int64 (N, 2), or (1, 2) for all images: each image's
  true (h, w) before padding, mmdet's ``img_shape``. Optional: the graph
  holds the default (1, 2) zeros, and a row of zeros means the whole of
  ``input`` (one image, or images of one size, unpadded);
- outputs ``dets``: float32 (N, K, 5), x1, y1, x2, y2, score in input pixels
  (clipped to each image's ``img_shape``), best first; ``labels``: int64
  (N, K); K = ``test_cfg.rcnn.max_per_img``. Rows without a detection have
  score 0, box 0 and label -1.

It computes what the detector's ``predict`` computes for these images (mmdet's
``data_preprocessor``, ``rescale`` with scale factor 1), stage for stage;
the fixed-size tensors that a graph needs replace mmdet's per-image lists:

0. mmdet's padding: the data preprocessor normalises each image, then pads
   the batch to its largest image rounded up to ``pad_size_divisor`` with
   ``pad_value`` (after normalisation). The graph does the same from the
   sizes it is given: it pads ``input`` to multiples of the divisor and
   sets everything outside each image's ``img_shape`` to ``pad_value``. So
   the padding is the graph's, not the caller's: a caller passes one image
   of any size as it is, or a batch padded with anything to a common size
   together with the images' sizes. (Padding done inside rather than
   required of the caller: the backbone needs multiples of its stride and
   mmdet pads to them; the sizes as an input rather than read from the
   padding: a graph cannot tell padding from a dark image.) mmdet's result
   for a batch is the graph's for the batch padded to mmdet's batch shape
   (the largest image): a larger padded input moves the map's border and
   adds anchors, which changes the proposals near it (and, where scores
   are near-tied, which others the NMS keeps);
1. normalisation (the config's ``data_preprocessor`` mean, std and channel
   order), backbone -> C4, C5, then the two maps of the detector
   (:meth:`LightHeadRCNNExport.features`): Light-Head R-CNN's RPN reads C4
   and its R-CNN the thin map of C5; ThunderNet's RPN reads the CEM map
   (of C4 and C5) and its R-CNN the CEM map re-weighted by SAM from the
   RPN's feature;
2. RPN head on its map; per image the ``nms_pre`` best anchors (sigmoid
   scores), decoded and clipped to the image (``img_shape``), boxes of size <=
   ``min_bbox_size`` dropped, NMS (``onnx_nms``) keeping ``max_per_img``
   proposals; the kept ones go to a fixed (N, P) layout in descending
   score order, P = ``test_cfg.rpn.max_per_img``, padded with empty slots
   when fewer are kept;
3. PSRoIAlign (the extractor's ``pool_mode``: the official max pooling,
   :func:`~shufflenet_det.models.layers.ps_align_max`, or torchvision's
   average, :func:`~.ops.ps_roi_align`) and the R-CNN subnet on all
   N * P slots; softmax, per-class box decoding clipped to the image;
4. per-class NMS of the scores > ``score_thr`` (``onnx_nms`` on N * classes
   batches), then the K best of each image. Plain NMS only: ONNX has no
   soft-NMS, and a graph with another NMS than the config's would not give
   the config's detections, so a soft-NMS config (ThunderNet's) is refused
   with the option that exports plain NMS instead (:func:`_plain_nms`).

:meth:`LightHeadRCNNExport.metadata` is what the graph computes with (its
``test_cfg``, normalisation, padding, channel order, classes), which the
export writes into the graph (``export.METADATA_KEY``).
"""
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.layers.ps_align import ps_align_max
from .ops import onnx_nms, ps_roi_align


# The version of the graph's metadata (LightHeadRCNNExport.metadata).
METADATA_FORMAT = 1
# The detector classes the export supports.
DETECTORS = ('LightHeadRCNN', 'ThunderNet')


class DeployError(ValueError):
    """The model or its config has something the export does not support."""


def _decimals(values):
    """float32 values as the shortest decimals that give them back (the
    config's 58.395, not 58.39500045776367)."""
    return [float(str(v)) for v in values.flatten().numpy()]


def _plain(cfg):
    """A config dict as plain JSON data (tuples become lists)."""
    return json.loads(json.dumps(cfg))


def delta2bbox(rois, deltas, means, stds, max_hw, wh_ratio_clip=16 / 1000):
    """mmdet's ``DeltaXYWHBBoxCoder.decode`` (``clip_border=True``, no
    centre clamp) for rois (B, ..., 4) and deltas (B, ..., 4), clipped to
    ``max_hw``: each image's (h, w), a float tensor (B or 1, 2).

    Not mmdet's ``delta2bbox`` (2-D, clipped in place to one image's shape)
    nor ``onnx_delta2bbox`` (under export it imports ``mmdet.core.export``,
    which mmdet 3.x no longer has)."""
    d = deltas * deltas.new_tensor(stds) + deltas.new_tensor(means)
    pxy = (rois[..., :2] + rois[..., 2:]) * 0.5
    pwh = rois[..., 2:] - rois[..., :2]
    max_ratio = abs(math.log(wh_ratio_clip))
    gxy = pxy + pwh * d[..., :2]
    gwh = pwh * d[..., 2:].clamp(min=-max_ratio, max=max_ratio).exp()
    boxes = torch.cat((gxy - gwh * 0.5, gxy + gwh * 0.5), dim=-1)
    h, w = max_hw[:, 0], max_hw[:, 1]
    hi = torch.stack((w, h, w, h), -1)  # (B or 1, 4)
    for _ in range(boxes.dim() - 2):
        hi = hi.unsqueeze(1)
    return torch.minimum(boxes.clamp(min=0), hi)


def _coder_params(coder, where):
    name = type(coder).__name__
    if name != 'DeltaXYWHBBoxCoder' or not getattr(coder, 'clip_border',
                                                   True) \
            or getattr(coder, 'add_ctr_clamp', False):
        raise DeployError(
            f'{where}: export supports DeltaXYWHBBoxCoder with clip_border='
            f'True and add_ctr_clamp=False, got {name}')
    # decode()'s default wh_ratio_clip (16 / 1000), which mmdet's heads use.
    return dict(means=list(coder.means), stds=list(coder.stds))


def _plain_nms(nms_cfg, where):
    cfg = dict(nms_cfg)
    kind = cfg.pop('type', 'nms')
    if kind == 'soft_nms':
        # Refused, not replaced in silence: the graph would not give the
        # config's detections (soft-NMS decays scores and keeps more boxes).
        raise DeployError(
            f'{where}.nms: ONNX has no soft-NMS ({dict(nms_cfg)}): export '
            'with plain NMS at the same IoU threshold by --cfg-options '
            f'model.{where}.nms.type=nms (and evaluate the graph with the '
            'same option: its detections are plain NMS\'s)')
    if kind != 'nms' or set(cfg) - {'iou_threshold'}:
        raise DeployError(f'{where}.nms: export supports plain NMS '
                          f"(type='nms', iou_threshold), got {dict(nms_cfg)}")
    return float(cfg['iou_threshold'])


def _gather_rows(x, idx):
    """x (B, N, D), idx (B, K) -> (B, K, D)."""
    return torch.gather(x, 1, idx[..., None].expand(-1, -1, x.shape[-1]))


class _RPNWithFeatures(nn.Module):
    """A head's ``forward_with_features`` as its ``forward``: the tracer
    names nodes after the modules called, so ThunderNet's RPN nodes go
    under ``/rpn_head/`` (``quantize.PARTS``) as Light-Head's do."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, feats):
        return self.head.forward_with_features(feats)


class LightHeadRCNNExport(nn.Module):
    """Light-Head R-CNN or ThunderNet inference from RGB 0-255 images and
    their sizes to (dets, labels); see the module docstring. Build it from a
    ``LightHeadRCNN`` or a ``ThunderNet`` in eval mode (weights are shared,
    not copied).

    The two detectors differ only in where the RPN and the R-CNN read
    (:meth:`features`); the rest of the graph is the same. ThunderNet's CEM
    is held as ``thin_map`` (it makes the thin map both stages read), so
    that its graph nodes carry the names (``/thin_map/...``) that the
    int8 parts go by (``quantize.PARTS``), as its RPN's (``/rpn_head/...``);
    SAM's are ``/sam/...``.

    ``debug=True`` makes ``forward`` also return the intermediate results
    (the proposals and their validity, the R-CNN's raw class scores and box
    deltas), for the parity tests.
    """

    def __init__(self, model, debug=False):
        super().__init__()
        self.detector = type(model).__name__
        if self.detector not in DETECTORS:
            raise DeployError(f'export supports {" and ".join(DETECTORS)}, '
                              f'got {self.detector}')
        self.debug = debug
        self.backbone = model.backbone
        if self.detector == 'ThunderNet':
            self.thin_map = model.neck  # the CEM
            self.rpn_head = _RPNWithFeatures(model.rpn_head)
        else:
            self.thin_map = model.thin_map
            self.rpn_head = model.rpn_head
        self.bbox_head = model.roi_head.bbox_head
        if self.detector == 'ThunderNet':
            self.sam = model.sam
        test_cfg = model.test_cfg

        # 1. Normalisation. The data preprocessor receives images as loaded
        # (BGR with mmcv's loader) and flips them when bgr_to_rgb is set;
        # mean and std are in the order after the flip.
        dp = model.data_preprocessor
        flip = bool(getattr(dp, '_channel_conversion', False))
        # RGB input: the model wants RGB if it flips BGR to RGB.
        self.to_bgr = not flip
        if getattr(dp, '_enable_normalize', True):
            mean, std = dp.mean.reshape(1, -1, 1, 1), dp.std.reshape(
                1, -1, 1, 1)
        else:
            mean, std = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
        self.register_buffer('mean', mean.clone().float(), persistent=False)
        self.register_buffer('std', std.clone().float(), persistent=False)
        # 0. Padding: to multiples of the divisor, with pad_value after the
        # normalisation (mmengine's ImgDataPreprocessor).
        self.size_divisor = int(getattr(dp, 'pad_size_divisor', 1) or 1)
        self.pad_value = float(getattr(dp, 'pad_value', 0))
        self.model_rgb = flip
        self.test_cfg = _plain(test_cfg)

        # 2. RPN.
        head = model.rpn_head
        gen = head.prior_generator
        if gen.num_levels != 1:
            raise DeployError('export supports a one-level RPN, got '
                              f'{gen.num_levels} levels')
        if not head.use_sigmoid_cls:
            raise DeployError('export supports a sigmoid RPN classifier')
        self.rpn_stride = float(gen.strides[0][0])
        self.register_buffer('base_anchors', gen.base_anchors[0].clone(),
                             persistent=False)
        self.rpn_coder = _coder_params(head.bbox_coder, 'rpn_head.bbox_coder')
        rpn = test_cfg.rpn
        self.rpn_iou = _plain_nms(rpn.nms, 'test_cfg.rpn')
        self.nms_pre = int(rpn.get('nms_pre', -1))
        self.num_proposals = int(rpn.max_per_img)
        self.min_bbox_size = float(rpn.get('min_bbox_size', -1))

        # 3. R-CNN.
        ext = model.roi_head.bbox_roi_extractor
        if type(ext).__name__ != 'PSRoIAlignExtractor':
            raise DeployError('export supports PSRoIAlignExtractor, got '
                              f'{type(ext).__name__}')
        layer = ext.roi_layers[0]
        self.pool_mode = ext.pool_mode
        self.roi_size = int(ext.output_size)
        self.sampling_ratio = int(layer.sampling_ratio)
        self.spatial_scale = 1.0 / ext.featmap_strides[0]
        bbox_head = self.bbox_head
        if bbox_head.custom_cls_channels or bbox_head.loss_cls.use_sigmoid:
            raise DeployError('export supports a softmax R-CNN classifier')
        self.num_classes = int(bbox_head.num_classes)
        self.class_agnostic = bool(bbox_head.reg_class_agnostic)
        self.rcnn_coder = _coder_params(bbox_head.bbox_coder,
                                        'roi_head.bbox_head.bbox_coder')
        rcnn = test_cfg.rcnn
        self.rcnn_iou = _plain_nms(rcnn.nms, 'test_cfg.rcnn')
        self.score_thr = float(rcnn.score_thr)
        self.max_per_img = int(rcnn.max_per_img)

    def metadata(self, classes=None):
        """What the graph computes with, as JSON-able data: written into the
        graph by the export (``export.METADATA_KEY``) and compared with a
        config by the tools that run a graph (``export.check_graph``).
        ``classes``: the class names, if known (the model has only their
        number)."""
        if classes is not None:
            classes = [str(c) for c in classes]
            if len(classes) != self.num_classes:
                raise DeployError(
                    f'{len(classes)} class names for a detector of '
                    f'{self.num_classes} classes: pass the config the model '
                    'was built from')
        return dict(
            format=METADATA_FORMAT,
            detector=self.detector,
            inputs=dict(
                input='float32 (N, 3, H, W), RGB 0-255, any H, W; image i '
                'at the top left, the rest ignored',
                img_shape='int64 (N, 2) or (1, 2): each image\'s (h, w) '
                'in input; optional, rows of 0 (the default): all of input'),
            outputs=dict(
                dets='float32 (N, K, 5): x1, y1, x2, y2 (input pixels, '
                'clipped to img_shape), score; best first; empty rows 0',
                labels='int64 (N, K): class index, -1 in empty rows'),
            test_cfg=self.test_cfg,
            preprocess=dict(
                input_channel_order='RGB',
                # mmdet's bgr_to_rgb (or rgb_to_bgr): True when the model
                # works in RGB; mean and std are in the model's order.
                bgr_to_rgb=self.model_rgb,
                mean=_decimals(self.mean), std=_decimals(self.std),
                pad_size_divisor=self.size_divisor,
                pad_value=self.pad_value),
            num_classes=self.num_classes,
            classes=classes,
            pool_mode=self.pool_mode)

    # --- stages -----------------------------------------------------------
    def image_sizes(self, input, img_shape):
        """Each image's (h, w), (N or 1, 2) float: ``img_shape``, rows of 0
        meaning all of ``input``, at most ``input``'s size."""
        # Sizes from the tensor (ReduceSum), so that the graph keeps them
        # dynamic.
        full = torch.stack((torch.ones_like(input[0, 0, :, 0]).sum(),
                            torch.ones_like(input[0, 0, 0, :]).sum()))
        hw = img_shape.to(full.dtype)
        return torch.minimum(torch.where(hw > 0, hw, full), full)

    def preprocess(self, images, img_hw):
        """Normalisation and mmdet's padding (module docstring, 0.)."""
        if self.to_bgr:
            images = images.flip(1)
        x = (images - self.mean) / self.std
        d = self.size_divisor
        if d > 1:
            h, w = x.shape[2], x.shape[3]
            x = F.pad(x, (0, (d - w % d) % d, 0, (d - h % d) % d),
                      value=self.pad_value)
        rows = torch.ones_like(x[0, 0, :, 0]).cumsum(0) - 1
        cols = torch.ones_like(x[0, 0, 0, :]).cumsum(0) - 1
        inside = ((rows < img_hw[:, :1])[:, None, :, None]
                  & (cols < img_hw[:, 1:])[:, None, None, :])
        return torch.where(inside, x, x.new_full((1, ), self.pad_value))

    def features(self, x):
        """The detector's maps from the normalised images: the RPN's scores
        and deltas (one level) and the map the R-CNN pools from.

        Light-Head R-CNN: the RPN on C4, the R-CNN on the thin map of C5.
        ThunderNet (``ThunderNet.rpn_forward``): the RPN on the CEM map of
        (C4, C5), the R-CNN on the CEM map re-weighted by SAM from the
        RPN's feature."""
        if self.detector == 'ThunderNet':
            cem = self.thin_map(self.backbone(x))[0]
            cls_scores, bbox_preds, rpn_feats = self.rpn_head((cem, ))
            return cls_scores[0], bbox_preds[0], self.sam(cem, rpn_feats[0])
        c4, c5 = self.backbone(x)
        thin = self.thin_map(c5)
        cls_scores, bbox_preds = self.rpn_head((c4, ))
        return cls_scores[0], bbox_preds[0], thin

    def anchors(self, feat):
        """mmdet's ``AnchorGenerator.grid_priors`` for one level: (h * w *
        A, 4), anchor a of pixel (y, x) at row (y * w + x) * A + a. Sizes
        come from the tensor (CumSum), so the graph keeps them dynamic."""
        stride = self.rpn_stride
        xs = (torch.ones_like(feat[0, 0, 0, :]).cumsum(0) - 1) * stride
        ys = (torch.ones_like(feat[0, 0, :, 0]).cumsum(0) - 1) * stride
        xx = xs[None, :] + ys[:, None] * 0
        yy = ys[:, None] + xs[None, :] * 0
        shifts = torch.stack((xx, yy, xx, yy), dim=-1)  # (h, w, 4)
        return (shifts[:, :, None, :] + self.base_anchors).reshape(-1, 4)

    def proposals(self, cls_score, bbox_pred, img_hw):
        """RPN post-processing of the whole batch: (B, P, 4) proposals in
        descending score order and (B, P) bool, which slots hold one."""
        b = cls_score.shape[0]
        scores = cls_score.permute(0, 2, 3, 1).reshape(b, -1).sigmoid()
        deltas = bbox_pred.permute(0, 2, 3, 1).reshape(b, -1, 4)
        anchors = self.anchors(cls_score)
        # Padding (score -1, never kept) so that the top-k below always has
        # k candidates, whatever the image size.
        pad = max(self.nms_pre, self.num_proposals)
        scores = torch.cat((scores, scores.new_full((1, pad), -1).expand(
            b, -1)), 1)
        deltas = torch.cat((deltas, deltas.new_zeros((1, pad, 4)).expand(
            b, -1, -1)), 1)
        anchors = torch.cat((anchors, anchors.new_zeros((pad, 4))))
        if self.nms_pre > 0:
            scores, idx = scores.topk(self.nms_pre, dim=1)
            deltas = _gather_rows(deltas, idx)
            anchors = anchors[idx]  # (B, nms_pre, 4)
        else:
            anchors = anchors[None].expand(b, -1, -1)
        boxes = delta2bbox(anchors, deltas, max_hw=img_hw, **self.rpn_coder)
        if self.min_bbox_size >= 0:
            wh = boxes[..., 2:] - boxes[..., :2]
            valid = (wh > self.min_bbox_size).all(-1)
            scores = torch.where(valid, scores, scores.new_full((1, ), -1))
        # Sigmoid scores are >= 0: the -1 ones are never selected.
        keep = onnx_nms(boxes, scores[:, None], self.num_proposals,
                        self.rpn_iou, -0.5)
        n = scores.shape[1]
        kept = torch.zeros_like(scores).reshape(-1)
        kept = kept.index_put((keep[:, 0] * n + keep[:, 2], ),
                              torch.ones_like(keep[:, 0], dtype=kept.dtype))
        ranked = torch.where(kept.reshape(b, n) > 0, scores,
                             scores.new_full((1, ), -1))
        top, idx = ranked.topk(self.num_proposals, dim=1)
        return _gather_rows(boxes, idx), top >= 0

    def rcnn(self, thin, proposals):
        if self.pool_mode == 'max':
            b, p = proposals.shape[:2]
            # Batch index of each slot, from the tensor (dynamic shapes).
            index = torch.ones_like(proposals[..., :1]).cumsum(0) - 1
            rois = torch.cat((index, proposals), -1).reshape(b * p, 5)
            feats = ps_align_max(thin, rois, self.roi_size,
                                 self.spatial_scale, self.sampling_ratio)
        else:
            feats = ps_roi_align(thin, proposals, self.roi_size,
                                 self.sampling_ratio, self.spatial_scale)
        return self.bbox_head(feats)

    def detections(self, proposals, valid, cls_score, bbox_pred, img_hw):
        """R-CNN post-processing: softmax, decoding, per-class NMS, the K
        best per image."""
        b, p = valid.shape[0], self.num_proposals
        c = self.num_classes
        scores = cls_score.softmax(-1)[:, :c].reshape(b, p, c)
        scores = scores * valid[..., None].to(scores.dtype)
        deltas = bbox_pred.reshape(b, p, -1, 4)
        boxes = delta2bbox(proposals[:, :, None, :], deltas, max_hw=img_hw,
                           **self.rcnn_coder)  # (B, P, C or 1, 4)
        boxes = boxes.expand(-1, -1, c, -1)
        # One NMS batch per (image, class).
        boxes_bc = boxes.permute(0, 2, 1, 3).reshape(b * c, p, 4)
        scores_bc = scores.permute(0, 2, 1).reshape(b * c, 1, p)
        keep = onnx_nms(boxes_bc, scores_bc, self.max_per_img, self.rcnn_iou,
                        self.score_thr)
        flat = scores_bc.reshape(-1)
        kept = torch.zeros_like(flat).index_put(
            (keep[:, 0] * p + keep[:, 2], ),
            torch.ones_like(keep[:, 0], dtype=flat.dtype))
        ranked = (flat * kept).reshape(b, c * p)
        boxes_flat = boxes_bc.reshape(b, c * p, 4)
        k = self.max_per_img
        if c * p < k:  # fewer candidates than rows: pad with empty ones
            ranked = torch.cat((ranked, ranked.new_zeros((1, k)).expand(
                b, -1)), 1)
            boxes_flat = torch.cat((boxes_flat, boxes_flat.new_zeros(
                (1, k, 4)).expand(b, -1, -1)), 1)
        top, idx = ranked.topk(k, dim=1)
        found = top > 0
        det_boxes = _gather_rows(boxes_flat, idx)
        det_boxes = det_boxes * found[..., None].to(det_boxes.dtype)
        labels = torch.where(found, torch.div(idx, p, rounding_mode='floor'),
                             torch.full_like(idx, -1))
        return torch.cat((det_boxes, top[..., None]), -1), labels

    def forward(self, input, img_shape=None):
        if img_shape is None:
            img_shape = input.new_zeros((1, 2), dtype=torch.long)
        img_hw = self.image_sizes(input, img_shape)
        x = self.preprocess(input, img_hw)
        rpn_cls, rpn_reg, rcnn_map = self.features(x)
        proposals, valid = self.proposals(rpn_cls, rpn_reg, img_hw)
        cls_score, bbox_pred = self.rcnn(rcnn_map, proposals)
        dets, labels = self.detections(proposals, valid, cls_score, bbox_pred,
                                       img_hw)
        if self.debug:
            return dets, labels, proposals, valid, cls_score, bbox_pred
        return dets, labels
