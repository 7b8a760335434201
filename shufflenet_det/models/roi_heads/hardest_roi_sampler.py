import torch

from mmdet.models.task_modules.samplers import OHEMSampler, SamplingResult
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox2roi, cat_boxes


@TASK_UTILS.register_module()
class HardestRoISampler(OHEMSampler):
    """OHEM as Light-Head R-CNN trains with it: of all RoIs of an image
    (proposals and ground-truth boxes, foreground and background together),
    keep the ``num`` with the highest loss.

    Why not mmdet's ``OHEMSampler`` as configured: it ranks positives and
    negatives separately, positives first up to ``num * pos_fraction``; no
    ``pos_fraction`` reproduces one joint ranking. And it ranks by the
    classification loss only, while the official code
    (``sum_ohem_loss`` in zengarden/light_head_rcnn) ranks by
    classification + box loss, the box loss counting for foreground RoIs
    only and before the box loss weight (x2) is applied. This class keeps
    OHEMSampler's machinery (the no-grad forward of the R-CNN head through
    ``context._bbox_forward``) and changes what is ranked.

    One difference from the official code remains: it ranks the RoIs of a
    whole per-GPU batch together (256 x 2 images); mmdet samples per image,
    so here every image keeps exactly ``num`` RoIs (fewer only if it has
    fewer candidates).

    Args:
        num (int): RoIs kept per image (256 in Light-Head R-CNN).
        context (StandardRoIHead): the head computing the loss (mmdet's
            ``StandardRoIHead`` passes itself when building its sampler).
        add_gt_as_proposals (bool): add the GT boxes to the candidates.
            Default: True.
    """

    #: what OHEMSampler's settings mean here: why each has no place
    _NOT_USED = {
        'pos_fraction': 'foreground and background are ranked together, '
                        'so there is no fraction to keep',
        'neg_pos_ub': 'there is no separate negative quota',
        'loss_key': 'the ranking is by classification + box loss, as the '
                    'official sum_ohem_loss',
    }

    def __init__(self, num, context, add_gt_as_proposals=True, **kwargs):
        if kwargs:
            why = '; '.join(
                f'{k}: ' + self._NOT_USED.get(k, 'not a setting of it')
                for k in sorted(kwargs))
            raise TypeError(
                f'HardestRoISampler does not use {sorted(kwargs)} ({why}). '
                f'Remove them from train_cfg.rcnn.sampler (it takes num and '
                f'add_gt_as_proposals), or use type=\'OHEMSampler\' for '
                f'mmdet\'s per-class OHEM.')
        super().__init__(num=num, pos_fraction=1.0, context=context,
                         neg_pos_ub=-1,
                         add_gt_as_proposals=add_gt_as_proposals)

    def sample(self, assign_result, pred_instances, gt_instances, feats=None,
               **kwargs):
        """Same contract as ``BaseSampler.sample``; ``feats`` (the image's
        R-CNN feature maps) is needed when there are more than ``num``
        candidates."""
        priors = pred_instances.priors
        gt_bboxes = gt_instances.bboxes
        gt_flags = priors.new_zeros((priors.shape[0], ), dtype=torch.uint8)
        if self.add_gt_as_proposals and len(gt_bboxes) > 0:
            priors = cat_boxes([gt_bboxes, priors], dim=0)
            assign_result.add_gt_(gt_instances.labels)
            gt_flags = torch.cat([
                priors.new_ones(len(gt_bboxes), dtype=torch.uint8), gt_flags
            ])
        # Candidates: every foreground (gt_inds > 0) and background
        # (gt_inds == 0) RoI; those the assigner ignores (-1) are left out.
        inds = torch.nonzero(assign_result.gt_inds >= 0).squeeze(1)
        if inds.numel() > self.num:
            gt_inds = assign_result.gt_inds[inds]
            labels = assign_result.labels[inds].clone()
            labels[gt_inds == 0] = self.bbox_head.num_classes  # background
            target_bboxes = gt_bboxes[(gt_inds - 1).clamp(min=0)] \
                if len(gt_bboxes) > 0 else None
            loss = self.roi_losses(priors[inds], labels, gt_inds > 0,
                                   target_bboxes, feats)
            inds = inds[loss.topk(self.num).indices]
        is_pos = assign_result.gt_inds[inds] > 0
        return SamplingResult(
            pos_inds=inds[is_pos].sort().values,
            neg_inds=inds[~is_pos].sort().values,
            priors=priors, gt_bboxes=gt_bboxes, assign_result=assign_result,
            gt_flags=gt_flags)

    @torch.no_grad()
    def roi_losses(self, priors, labels, is_pos, target_bboxes, feats):
        """Per-RoI loss the ranking uses: classification loss + box loss
        (foreground only), each without its loss weight. Shape (n, )."""
        head = self.bbox_head
        rois = bbox2roi([priors])
        results = self.context._bbox_forward(feats, rois)
        loss = head.loss_cls(
            results['cls_score'], labels, reduction_override='none')
        loss = loss / getattr(head.loss_cls, 'loss_weight', 1.0)
        pos = is_pos.nonzero().squeeze(1)
        if pos.numel() == 0:
            return loss
        deltas = results['bbox_pred'].view(rois.size(0), -1, 4)[pos]
        deltas = deltas[:, 0] if head.reg_class_agnostic else \
            deltas[torch.arange(pos.numel()), labels[pos]]
        if head.reg_decoded_bbox:  # e.g. IoU losses: compare boxes
            pred = head.bbox_coder.decode(priors[pos], deltas)
            target = target_bboxes[pos]
        else:
            pred = deltas
            target = head.bbox_coder.encode(priors[pos], target_bboxes[pos])
        box_loss = head.loss_bbox(pred, target, reduction_override='none')
        if box_loss.dim() > 1:
            box_loss = box_loss.sum(dim=1)
        box_loss = box_loss / getattr(head.loss_bbox, 'loss_weight', 1.0)
        return loss.index_add(0, pos, box_loss)
