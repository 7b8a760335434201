"""Comparing two sets of padded detections (PyTorch and ONNX Runtime):
plain NumPy, so that it also serves deployment code without torch."""
import numpy as np


def box_iou(a, b):
    """IoU matrix of boxes a (n, 4) and b (m, 4), x1, y1, x2, y2."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_detections(ref_dets, ref_labels, dets, labels, iou_thr=0.99,
                     score_tol=1e-3):
    """Match each reference detection (score > 0; best first) to an unused
    detection of the same image and label with IoU >= ``iou_thr`` and score
    within ``score_tol``. Boxes of no area (clipped flat against an image
    border; mmdet keeps them too) have no IoU: they match when their
    coordinates agree within 0.01 pixel.

    Args: (N, K, 5) dets and (N, K) labels, reference first.

    Returns:
        dict: ``reference`` (detections in the reference), ``other`` (in the
        second set), ``matched``, ``max_score_diff`` and ``min_iou`` over
        the matched pairs.
    """
    ref_dets, dets = np.asarray(ref_dets), np.asarray(dets)
    total = other = matched = 0
    max_diff, min_iou = 0.0, 1.0
    for i in range(ref_dets.shape[0]):
        r = ref_dets[i][ref_dets[i][:, 4] > 0]
        rl = np.asarray(ref_labels[i])[ref_dets[i][:, 4] > 0]
        o = dets[i][dets[i][:, 4] > 0]
        ol = np.asarray(labels[i])[dets[i][:, 4] > 0]
        total += len(r)
        other += len(o)
        if not len(r) or not len(o):
            continue
        iou = box_iou(r[:, :4], o[:, :4])
        flat = (r[:, None, 2:4] <= r[:, None, :2]).any(-1) | (
            o[None, :, 2:4] <= o[None, :, :2]).any(-1)
        same = np.abs(r[:, None, :4] - o[None, :, :4]).max(-1) <= 0.01
        iou = np.where(flat & same, 1.0, iou)
        ok = ((iou >= iou_thr) & (rl[:, None] == ol[None, :])
              & (np.abs(r[:, None, 4] - o[None, :, 4]) <= score_tol))
        used = np.zeros(len(o), bool)
        for j in range(len(r)):
            cand = np.flatnonzero(ok[j] & ~used)
            if len(cand):
                best = cand[np.argmax(iou[j, cand])]
                used[best] = True
                matched += 1
                max_diff = max(max_diff, abs(float(r[j, 4] - o[best, 4])))
                min_iou = min(min_iou, float(iou[j, best]))
    return dict(reference=total, other=other, matched=matched,
                max_score_diff=max_diff, min_iou=min_iou)
