"""Where Light-Head R-CNN's inference time goes in PyTorch: one batch split
into its stages, each timed separately (``tools/analysis/lighthead_profile.py``
is the command line; ONNX Runtime's own per-node profile is
:mod:`shufflenet_det.deploy.profile`).

The stages, in order: data_preprocessor (normalise, pad), backbone, thin
map (LargeSeparableConv on C5), RPN head (3x3 conv + 1x1 convs on C4), RPN
post-processing (top-k, decode, NMS), R-CNN (PSRoIAlign + fc 2048 +
class/box fcs on all proposals) and the R-CNN post-processing (softmax,
decode, per-class NMS). Their sum is what :mod:`.detector` times as one
piece.
"""
import statistics
import time

import torch

from ..deploy.optimize import optimize_for_inference


def stages(model, batch):
    """One inference of ``batch``, split into its stages: a list of
    (name, callable) run in order, each taking and returning a state
    dict."""
    def preprocess(s):
        data = model.data_preprocessor(batch, False)
        s.update(x=data['inputs'], samples=data['data_samples'])

    def backbone(s):
        x = s['x']
        if s.get('channels_last'):
            x = x.contiguous(memory_format=torch.channels_last)
        s['c4'], s['c5'] = model.backbone(x)

    def thin_map(s):
        s['thin'] = model.thin_map(s['c5'])

    def rpn_head(s):
        s['rpn_out'] = model.rpn_head((s['c4'], ))

    def rpn_post(s):
        metas = [d.metainfo for d in s['samples']]
        s['proposals'] = model.rpn_head.predict_by_feat(
            *s['rpn_out'], batch_img_metas=metas, rescale=False)

    def rcnn(s):
        from mmdet.structures.bbox import bbox2roi
        rois = bbox2roi([p.bboxes for p in s['proposals']])
        out = model.roi_head._bbox_forward((s['thin'], ), rois)
        s['rois'], s['rcnn_out'] = rois, out

    def rcnn_post(s):
        num = tuple(len(p) for p in s['proposals'])
        out = s['rcnn_out']
        metas = [d.metainfo for d in s['samples']]
        s['results'] = model.roi_head.bbox_head.predict_by_feat(
            rois=s['rois'].split(num), cls_scores=out['cls_score'].split(num),
            bbox_preds=out['bbox_pred'].split(num), batch_img_metas=metas,
            rcnn_test_cfg=model.roi_head.test_cfg, rescale=True)

    return [('data_preprocessor', preprocess), ('backbone', backbone),
            ('thin map (LargeSeparableConv)', thin_map),
            ('RPN head', rpn_head), ('RPN post-processing', rpn_post),
            ('R-CNN (PSRoIAlign + fcs)', rcnn),
            ('R-CNN post-processing', rcnn_post)]


def prepare(model, as_built=False, channels_last=False):
    """``model`` as it is profiled: rewritten as the benchmark runs it
    (BatchNorm folded, channels-last), or as built (channels-last if
    asked). Returns (model, rewrites, channels_last)."""
    opt = dict(batchnorm_folded=0, channels_last=False)
    if not as_built:
        opt = optimize_for_inference(model, channels_last=True)
    elif channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, opt, channels_last or opt['channels_last']


def describe(opt, channels_last):
    """How a prepared model runs, in a few words."""
    return ', '.join((['BatchNorm folded'] if opt['batchnorm_folded'] else [])
                     + (['channels_last'] if channels_last else [])
                     ) or 'as built'


def profile_stages(variants, batch, iters=3, warmup=1, stat='median'):
    """Time each stage of each prepared model of ``variants`` (from
    :func:`prepare`) on ``batch``; the variants' runs alternate, so that
    all see the machine alike. Returns ({stage: seconds} per variant, the
    proposals of the last run), ``stat`` ('median' or 'min') of the timed
    runs."""
    plans = [stages(model, batch) for model, _, _ in variants]
    times = [{name: [] for name, _ in plan} for plan in plans]
    with torch.inference_mode():
        for i in range(warmup + iters):
            for plan, t, (_, _, channels_last) in zip(plans, times,
                                                      variants):
                state = dict(channels_last=channels_last)
                for name, run in plan:
                    start = time.perf_counter()
                    run(state)
                    if i >= warmup:
                        t[name].append(time.perf_counter() - start)
    reduce = min if stat == 'min' else statistics.median
    return [{k: reduce(v) for k, v in t.items()} for t in times], \
        state['proposals']


def report_lines(stats, batch_size):
    """One stage a line, ms and share: one variant, or two side by side
    (as built, rewritten) with the speed-up; then the totals."""
    totals = [sum(st.values()) for st in stats]
    lines = []
    if len(stats) == 1:
        lines.append(f'{"stage":<32} {"ms":>8} {"share":>6}')
        for name, t in stats[0].items():
            lines.append(f'{name:<32} {1000 * t:>8.1f} '
                         f'{100 * t / totals[0]:>5.1f}%')
    else:
        lines.append(f'{"stage":<32} {"as built ms":>11} {"share":>6} '
                     f'{"rewritten ms":>12} {"share":>6} {"speed-up":>8}')
        for name in stats[0]:
            a, b = stats[0][name], stats[1][name]
            lines.append(
                f'{name:<32} {1000 * a:>11.1f} {100 * a / totals[0]:>5.1f}% '
                f'{1000 * b:>12.1f} {100 * b / totals[1]:>5.1f}% '
                f'{a / b:>7.2f}x')
    lines.append(f'{"total":<32} ' + ' '.join(
        f'{1000 * t:>8.1f} ({batch_size / t:.2f} images/s)' for t in totals))
    return lines


def costliest_ops(variant, batch, n):
    """torch.profiler's table of the ``n`` costliest operators of one run
    of a prepared model."""
    from torch.profiler import profile
    model, _, channels_last = variant
    with torch.inference_mode(), profile() as prof:
        state = dict(channels_last=channels_last)
        for _, run in stages(model, batch):
            run(state)
    return prof.key_averages().table(sort_by='self_cpu_time_total',
                                     row_limit=n)
