"""Operators of Light-Head R-CNN written so that ``torch.onnx.export`` maps
them to standard ONNX operators (opset 16), with the same results in
PyTorch and in ONNX Runtime.

- :func:`ps_roi_align`: torchvision's ``ps_roi_align`` (no ONNX operator
  exists) as ``RoiAlign`` over each bin's channel group.
- :func:`onnx_nms`: ONNX's ``NonMaxSuppression`` (batched, per class, stops
  at ``max_output_boxes_per_class``), with a PyTorch implementation of the
  same semantics for eager runs.
"""
import torch
from torchvision.ops import nms

from ..models.layers.ps_align import bin_groups

OPSET = 16  # RoiAlign with half-pixel coordinates needs 16


def ps_roi_align(feat, rois, output_size=7, sampling_ratio=2,
                 spatial_scale=1 / 32):
    """Position-sensitive RoI align as torchvision's
    ``ops.ps_roi_align(feat, rois, output_size, spatial_scale,
    sampling_ratio)``, from operators that ONNX has.

    Bin (i, j) of a RoI reads only its own group of ``C`` channels (output
    channel c of the bin is input channel ``(c * k + i) * k + j``). The map
    is regrouped as ``B * k * k`` images of ``C`` channels, one per (image,
    bin), and every bin of every RoI becomes a RoI of its own on its
    group's image, pooled to 1 x 1 by ``roi_align`` (ONNX ``RoiAlign``,
    half-pixel, ``s * s`` samples): the same samples, bilinear rule and
    average as torchvision's PSRoIAlign, and only the ``C * k * k * s * s``
    samples per RoI that the output needs (``RoiAlign`` over all
    ``C * k * k`` channels with a k x k output would take ``k * k`` times
    more).

    Measured in ONNX Runtime 1.31 (1 thread, 4 x 1000 RoIs on a 490 x 25 x
    38 map, on the 2-core machine of docs/benchmarks.md with other load; torchvision's
    C++ kernel in PyTorch took 111-141 ms in the same runs): 51-78 ms this
    way; 240-303 ms with one ``GridSample`` per bin group instead; 510 ms
    with explicit bilinear ``Gather`` s.

    Args:
        feat (Tensor): (B, C * k * k, H, W).
        rois (Tensor): (B, R, 4), x1, y1, x2, y2 in input pixels: the same
            number of RoIs per image.
        output_size (int): k.
        sampling_ratio (int): s, samples per bin side (> 0).
        spatial_scale (float): feature pixels per input pixel.

    Returns:
        Tensor: (B * R, C, k, k), the RoIs of image 0 first.
    """
    from torchvision.ops import roi_align
    if sampling_ratio <= 0:
        raise ValueError('ps_roi_align for export needs a fixed '
                         f'sampling_ratio > 0, got {sampling_ratio}')
    k, s = output_size, sampling_ratio
    b, ckk, h, w = feat.shape
    c = ckk // (k * k)
    r = rois.shape[1]
    x1, y1, x2, y2 = rois.unbind(-1)  # (B, R)
    bw, bh = (x2 - x1) / k, (y2 - y1) / k
    steps = torch.arange(k, dtype=rois.dtype, device=rois.device)
    bx1 = (x1[..., None] + bw[..., None] * steps).permute(0, 2, 1)
    by1 = (y1[..., None] + bh[..., None] * steps).permute(0, 2, 1)
    bx2, by2 = bx1 + bw[:, None], by1 + bh[:, None]  # (B, k, R)
    # (B, i, j, R, 4): the bins' boxes, on image b * k * k + i * k + j.
    boxes = torch.stack(torch.broadcast_tensors(
        bx1[:, None], by1[:, :, None], bx2[:, None], by2[:, :, None]), -1)
    img = (torch.ones_like(boxes[..., 0]).reshape(-1, r).cumsum(0)[:, :1]
           - 1).expand(-1, r)
    groups = bin_groups(feat, k)  # (B * k * k, C, H, W)
    pooled = roi_align(groups, torch.cat(
        (img.reshape(-1, 1), boxes.reshape(-1, 4)), 1), 1, spatial_scale, s,
        aligned=True)  # (B * k * k * R, C, 1, 1)
    return pooled.reshape(b, k, k, r, c).permute(0, 3, 4, 1, 2).reshape(
        -1, c, k, k)


class _NonMaxSuppression(torch.autograd.Function):
    """ONNX ``NonMaxSuppression`` (opset 11+): ``selected`` (M, 3) int64
    rows (batch, class, box); per batch and class, the boxes with score >
    ``score_threshold`` in descending score order, each kept unless a kept
    box of the same batch and class overlaps it with IoU > ``iou_threshold``,
    at most ``max_output`` of them."""

    @staticmethod
    def forward(ctx, boxes, scores, max_output, iou_threshold,
                score_threshold):
        # While torch.onnx.export traces, the symbolic below stands for this
        # function: its own operators stay out of the trace.
        state = torch._C._get_tracing_state()
        torch._C._set_tracing_state(None)
        try:
            return _nms_reference(boxes, scores, max_output, iou_threshold,
                                  score_threshold)
        finally:
            torch._C._set_tracing_state(state)

    @staticmethod
    def symbolic(g, boxes, scores, max_output, iou_threshold,
                 score_threshold):
        def const(value, dtype):
            return g.op('Constant', value_t=torch.tensor([value], dtype=dtype))
        return g.op('NonMaxSuppression', boxes, scores,
                    const(max_output, torch.long),
                    const(iou_threshold, torch.float),
                    const(score_threshold, torch.float))


def _nms_reference(boxes, scores, max_output, iou_threshold,
                   score_threshold):
    """What ONNX Runtime's NonMaxSuppression returns, with torchvision's
    NMS (and the early-stopping one of the RPN when at most ``max_output``
    of more candidates are kept)."""
    from shufflenet_det.models.dense_heads.early_stop_rpn_head import \
        nms_first_k
    selected = []
    num_batches, num_classes = scores.shape[:2]
    for b in range(num_batches):
        for c in range(num_classes):
            cand = (scores[b, c] > score_threshold).nonzero()[:, 0]
            if cand.numel() == 0:
                continue
            if max_output >= cand.numel():
                keep = nms(boxes[b, cand], scores[b, c, cand],
                           iou_threshold)
            else:
                keep = nms_first_k(boxes[b, cand], scores[b, c, cand],
                                   iou_threshold, max_output)
            keep = cand[keep[:max_output]]
            selected.append(torch.stack(
                (torch.full_like(keep, b), torch.full_like(keep, c),
                 keep), 1))
    if not selected:
        return torch.zeros((0, 3), dtype=torch.long, device=boxes.device)
    return torch.cat(selected)


def onnx_nms(boxes, scores, max_output, iou_threshold, score_threshold):
    """ONNX's ``NonMaxSuppression``, in PyTorch and when exported.

    Args:
        boxes (Tensor): (B, N, 4) x1, y1, x2, y2.
        scores (Tensor): (B, C, N).
        max_output (int): boxes kept per batch and class at most.
        iou_threshold (float): suppress when IoU > this.
        score_threshold (float): only boxes with score > this.

    Returns:
        Tensor: (M, 3) int64, rows (batch, class, box index), per batch
        and class in descending score order.
    """
    return _NonMaxSuppression.apply(boxes, scores, int(max_output),
                                    float(iou_threshold),
                                    float(score_threshold))

