"""Where Light-Head R-CNN's inference time goes: the stages of one batch
(batch 4, 800x1200 by default), each timed separately, median of N runs.

    python tools/analysis/lighthead_profile.py configs/lighthead_v2star.py
    python tools/analysis/lighthead_profile.py CONFIG --threads 2 --ops 20
    python tools/analysis/lighthead_profile.py CONFIG --as-built  # no rewrites
    python tools/analysis/lighthead_profile.py CONFIG --compare --stat min

The stages, in order: data_preprocessor (normalise, pad), backbone, thin
map (LargeSeparableConv on C5), RPN head (3x3 conv + 1x1 convs on C4), RPN
post-processing (top-k, decode, NMS: 6000 -> 1000 per image), R-CNN
(PSRoIAlign + fc 2048 + class/box fcs on all proposals) and the R-CNN
post-processing (softmax, decode, per-class NMS). Their sum is what
tools/analysis/benchmark.py times as one piece (that tool gives the
headline images/s and the comparison with torchvision's detector).
``--ops N`` adds torch.profiler's N most expensive operators of one run.
The model runs as tools/analysis/benchmark.py runs it: BatchNorm folded into
the convolutions, weights and images in channels-last layout; ``--as-built``
profiles it as mmdet builds it. ``--stat min`` reports each stage's fastest
run instead of the median (on a machine with other load, the better
estimate of what the stage itself costs). ``--compare`` profiles the model
as built and rewritten in the same run, their runs alternating: the
before/after of the rewrites, stage by stage.
"""
import argparse
import os.path as osp
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from shufflenet_det.apis.detector import build_detector

from shufflenet_det.utils.inputs import mmdet_batch, synthetic_images

from shufflenet_det.deploy.optimize import optimize_for_inference


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='a LightHeadRCNN config')
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--shape', type=int, nargs=2, default=[800, 1200],
                   metavar=('H', 'W'))
    p.add_argument('--iters', type=int, default=3, help='timed runs')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, default=None,
                   help="torch CPU threads (default: torch's choice)")
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--as-built', action='store_true',
                   help='the model as mmdet builds it (default: BatchNorm '
                   'folded and channels-last, as the benchmark runs it)')
    p.add_argument('--stat', choices=['median', 'min'], default='median',
                   help='per stage: the median or the fastest of the runs')
    p.add_argument('--compare', action='store_true',
                   help='profile the model as built and rewritten, their '
                   'runs alternating, side by side')
    p.add_argument('--ops', type=int, default=0, metavar='N',
                   help='also print the N costliest operators')
    return p.parse_args(argv)


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


def build(args, as_built):
    """The model and how it runs: (model, rewrites, channels_last)."""
    model = build_detector(args.config)
    opt = dict(batchnorm_folded=0, channels_last=False)
    if not as_built:
        opt = optimize_for_inference(model, channels_last=True)
    elif args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, opt, args.channels_last or opt['channels_last']


def describe(opt, channels_last):
    return ', '.join((['BatchNorm folded'] if opt['batchnorm_folded'] else [])
                     + (['channels_last'] if channels_last else [])
                     ) or 'as built'


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = [build(args, args.as_built)]
    if args.compare:  # as built first, then the rewritten one
        variants = [build(args, True), build(args, False)]
    batch = mmdet_batch(synthetic_images(args.batch_size, args.shape))
    plans = [stages(model, batch) for model, _, _ in variants]

    # The variants' runs alternate, so that both see the machine alike.
    times = [{name: [] for name, _ in plan} for plan in plans]
    with torch.inference_mode():
        for i in range(args.warmup + args.iters):
            for plan, t, (_, _, channels_last) in zip(plans, times,
                                                      variants):
                state = dict(channels_last=channels_last)
                for name, run in plan:
                    start = time.perf_counter()
                    run(state)
                    if i >= args.warmup:
                        t[name].append(time.perf_counter() - start)
    stat = min if args.stat == 'min' else statistics.median
    stats = [{k: stat(v) for k, v in t.items()} for t in times]
    totals = [sum(st.values()) for st in stats]
    labels = [describe(opt, cl) for _, opt, cl in variants]
    print(f'{osp.basename(args.config)}: batch {args.batch_size}, '
          f'{args.shape[0]}x{args.shape[1]}, CPU, '
          f'{torch.get_num_threads()} threads, {" vs ".join(labels)}, '
          f'{args.stat} of {args.iters} runs; '
          f'{sum(len(p) for p in state["proposals"])} proposals')
    if len(stats) == 1:
        print(f'{"stage":<32} {"ms":>8} {"share":>6}')
        for name, t in stats[0].items():
            print(f'{name:<32} {1000 * t:>8.1f} {100 * t / totals[0]:>5.1f}%')
    else:
        print(f'{"stage":<32} {"as built ms":>11} {"share":>6} '
              f'{"rewritten ms":>12} {"share":>6} {"speed-up":>8}')
        for name in stats[0]:
            a, b = stats[0][name], stats[1][name]
            print(f'{name:<32} {1000 * a:>11.1f} {100 * a / totals[0]:>5.1f}% '
                  f'{1000 * b:>12.1f} {100 * b / totals[1]:>5.1f}% '
                  f'{a / b:>7.2f}x')
    print(f'{"total":<32} ' + ' '.join(
        f'{1000 * t:>8.1f} ({args.batch_size / t:.2f} images/s)'
        for t in totals))
    model, _, channels_last = variants[-1]
    plan = plans[-1]

    if args.ops:
        from torch.profiler import profile
        with torch.inference_mode(), profile() as prof:
            state = dict(channels_last=channels_last)
            for _, run in plan:
                run(state)
        print(prof.key_averages().table(sort_by='self_cpu_time_total',
                                        row_limit=args.ops))


if __name__ == '__main__':
    main()
