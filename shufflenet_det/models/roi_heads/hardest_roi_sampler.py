import torch

from mmdet.models.task_modules.samplers import OHEMSampler, SamplingResult
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import cat_boxes


@TASK_UTILS.register_module()
class HardestRoISampler(OHEMSampler):
    """OHEM as Light-Head R-CNN uses it: of all RoIs of an image (proposals
    and ground-truth boxes, foreground and background together), keep the
    ``num`` with the highest classification loss.

    mmdet's ``OHEMSampler`` ranks positives and negatives separately, with
    a quota of ``num * pos_fraction`` positives; here there is no quota, as
    in the official code. The loss is computed by the R-CNN head itself
    without gradient (``OHEMSampler.hard_mining``).

    Args:
        num (int): RoIs kept per image (256 in Light-Head R-CNN).
        context (StandardRoIHead): the head computing the loss (mmdet's
            ``StandardRoIHead`` passes itself).
        add_gt_as_proposals (bool): add the GT boxes to the candidates.
        loss_key (str): which loss ranks the RoIs. Default: 'loss_cls'.
    """

    def __init__(self, num, context, add_gt_as_proposals=True,
                 loss_key='loss_cls', **kwargs):
        super().__init__(num=num, pos_fraction=1.0, context=context,
                         neg_pos_ub=-1,
                         add_gt_as_proposals=add_gt_as_proposals,
                         loss_key=loss_key)

    def sample(self, assign_result, pred_instances, gt_instances, feats=None,
               **kwargs):
        priors = pred_instances.priors
        gt_bboxes = gt_instances.bboxes
        gt_flags = priors.new_zeros((priors.shape[0], ), dtype=torch.uint8)
        if self.add_gt_as_proposals and len(gt_bboxes) > 0:
            priors = cat_boxes([gt_bboxes, priors], dim=0)
            assign_result.add_gt_(gt_instances.labels)
            gt_flags = torch.cat([
                priors.new_ones(len(gt_bboxes), dtype=torch.uint8), gt_flags
            ])
        # Candidates: every RoI that is foreground or background (not the
        # ones the assigner ignores, gt_inds == -1).
        inds = torch.nonzero(assign_result.gt_inds >= 0).squeeze(1)
        if inds.numel() > self.num:
            labels = assign_result.labels[inds].clone()
            labels[assign_result.gt_inds[inds] == 0] = \
                self.bbox_head.num_classes
            inds = self.hard_mining(inds, self.num, priors[inds], labels,
                                    feats)
        is_pos = assign_result.gt_inds[inds] > 0
        return SamplingResult(
            pos_inds=inds[is_pos].unique(), neg_inds=inds[~is_pos].unique(),
            priors=priors, gt_bboxes=gt_bboxes, assign_result=assign_result,
            gt_flags=gt_flags)
