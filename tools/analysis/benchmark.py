"""Inference speed of a detector at batch 4, 800x1200 (the paper's Table 7
protocol): from host images to final detections, host-to-device copy
included. A benchmark, not a test.

    python tools/analysis/benchmark.py configs/lighthead_v2star.py
    python tools/analysis/benchmark.py CONFIG --device cuda --fp16 --iters 50
    python tools/analysis/benchmark.py CONFIG --device cpu --peer --threads 2
    python tools/analysis/benchmark.py CONFIG --device cpu --peer \
        --backend pytorch onnxruntime

``--backend onnxruntime`` times the detector exported to one ONNX graph
(``shufflenet_det.deploy``, exported for the batch size and the shape,
padded to multiples of 32) in ONNX Runtime on the CPU, from the same host
images: stacking them as float32 RGB and padding with the mean colour is
part of the timed run, as mmdet's pre-processing is part of PyTorch's.
``--backend onnxruntime-int8`` times that graph quantised to int8
(``tools/deployment/quantize_onnx.py``'s default parts; calibrated on the
benchmark's own images, which with random weights is all a timing needs).
Several backends are timed round-robin in the same run (with the peer).
``--ort-profile`` adds, for each ONNX Runtime backend, where one run's time
goes: ONNX Runtime's own per-node profile summed by part of the detector
and by operator.
Our PyTorch path runs as a deployment would run it: BatchNorm folded into
the convolutions, and on the CPU weights and images in channels-last
layout (``optimize_for_inference``); ``--backend pytorch-as-built`` times
the model as mmdet builds it. The peer runs as torchvision ships it, unless
``--channels-last`` (weights and images of both in channels-last).

``--peer`` times torchvision's fasterrcnn_mobilenet_v3_large_fpn (random
weights, min_size 800, max_size 1200 for the default shape) on the same
images in the same run, the timed runs of the two alternating, and reports
the ratio. Without ``--checkpoint`` both detectors have random weights,
drawn with a fixed seed (the NMS time depends on the scores). ``--fp16`` and
``--channels-last`` apply to both. The JSON holds the settings and the
device, its name and the torch/CUDA/cuDNN/mmcv versions.

On CUDA the tool first checks that CUDA is available and that mmcv's ops
were built with CUDA kernels, and stops with one line naming the fix if not.
"""
import argparse
import copy
import json
import os.path as osp
import sys
import tempfile

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

from shufflenet_det.apis.onnxruntime import OnnxRuntimeDetector

from shufflenet_det.apis.detector import build_detector

from shufflenet_det.benchmark.timing import (

    describe_device,

    environment,

    time_interleaved,

)

from shufflenet_det.utils.inputs import mmdet_batch, synthetic_images

from shufflenet_det.deploy.optimize import (

    optimize_for_inference,

    use_channels_last,

)
from shufflenet_det.benchmark.peer import PEER, build_peer  # noqa: E402
from shufflenet_det.utils.device import check_device  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='detector config')
    p.add_argument('--checkpoint', help='trained weights (default: random)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available()
                   else 'cpu', choices=['cuda', 'cpu'])
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--shape', type=int, nargs=2, default=[800, 1200],
                   metavar=('H', 'W'), help='input height and width')
    p.add_argument('--fp16', action='store_true',
                   help='autocast to float16 (CUDA only)')
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--iters', type=int, default=None,
                   help='timed runs (default 50 on CUDA, 5 on CPU)')
    p.add_argument('--warmup', type=int, default=None,
                   help='untimed runs first (default 10 on CUDA, 1 on CPU)')
    p.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads (default: torch\'s choice)')
    p.add_argument('--peer', action='store_true',
                   help='also time torchvision fasterrcnn_mobilenet_v3_large_fpn')
    p.add_argument('--backend', nargs='+', default=['pytorch'],
                   choices=list(BACKENDS),
                   help='run our detector in PyTorch (default; BatchNorm '
                   'folded, channels-last on the CPU), in PyTorch as mmdet '
                   'builds it, in ONNX Runtime (CPU), fp32 or int8; '
                   'several: in the same run')
    p.add_argument('--ort-profile', action='store_true',
                   help='with an ONNX Runtime backend: where the time of '
                   'one run goes, by part and by operator')
    p.add_argument('--json', help='write the results to this JSON file')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    return p.parse_args(argv)


BACKENDS = {'pytorch': 'PyTorch', 'pytorch-as-built': 'PyTorch as built',
            'onnxruntime': 'ONNX Runtime',
            'onnxruntime-int8': 'ONNX Runtime int8'}
ORT_BACKENDS = ('onnxruntime', 'onnxruntime-int8')


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(check_device(args.device))
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True  # as the paper's timings
    elif args.fp16:
        raise SystemExit('error: --fp16 is for CUDA devices; drop it on CPU.')
    if args.threads:
        torch.set_num_threads(args.threads)
    on_gpu = device.type == 'cuda'
    args.iters = args.iters or (50 if on_gpu else 5)
    args.warmup = args.warmup if args.warmup is not None else (
        10 if on_gpu else 1)
    images = synthetic_images(args.batch_size, args.shape)

    def autocast():
        return torch.autocast(device.type, dtype=torch.float16,
                              enabled=args.fp16)

    backends = list(dict.fromkeys(args.backend))
    ort_backends = [b for b in backends if b in ORT_BACKENDS]
    if ort_backends:
        if device.type != 'cpu' or args.fp16:
            raise SystemExit(f'error: --backend {ort_backends[0]} runs on the '
                             'CPU, without autocast: use --device cpu, '
                             'without --fp16.')
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise SystemExit('error: --backend onnxruntime needs onnx and '
                             'onnxruntime: pip install -e .[deploy] (make '
                             'setup installs them).') from None
    model = build_detector(args.config, args.checkpoint,
                           args.cfg_options).to(device)
    batch = mmdet_batch(images)
    names, kinds, models, runs = [], [], [], []
    tmp = tempfile.TemporaryDirectory()
    ort_models = {}
    if ort_backends:
        # Exported before the PyTorch rewrites (the exporter and ONNX
        # Runtime fold BatchNorm themselves).
        ort_models['onnxruntime'] = OnnxRuntimeDetector(
            model, args.batch_size, args.shape,
            osp.join(tmp.name, 'model.onnx'),
            threads=args.threads or torch.get_num_threads())
        if 'onnxruntime-int8' in backends:
            ort_models['onnxruntime-int8'] = ort_models['onnxruntime'].int8(
                osp.join(tmp.name, 'model_int8.onnx'), images)
    rewrites = {}
    for kind in ('pytorch', 'pytorch-as-built'):
        if kind not in backends:
            continue
        ours = model
        if kind == 'pytorch':
            if 'pytorch-as-built' in backends:
                ours = copy.deepcopy(model)
            rewrites = optimize_for_inference(
                ours, channels_last=True if args.channels_last else None)
        elif args.channels_last:
            use_channels_last(ours, ours.backbone)

        def run_ours(ours=ours):
            with autocast():
                return ours.test_step(batch)

        names.append(osp.basename(args.config)
                     + (' (as built)' if kind == 'pytorch-as-built' else ''))
        kinds.append(kind)
        models.append(ours)
        runs.append(run_ours)
    for kind in ort_backends:
        names.append(f'{osp.basename(args.config)} ({BACKENDS[kind]})')
        kinds.append(kind)
        models.append(model)
        runs.append(lambda ort_model=ort_models[kind]: ort_model(images))

    if args.peer:
        torch.manual_seed(0)
        peer = build_peer(args.shape).to(device)
        if args.channels_last:
            use_channels_last(peer, peer.backbone)

        def run_peer():
            with autocast():
                return peer([img.to(device).float().div_(255)
                             for img in images])

        names.append(PEER)
        kinds.append('peer')
        models.append(peer)
        runs.append(run_peer)

    from mmengine.utils import ProgressBar

    # With the peer: round-robin timed runs, so that both see the machine
    # in the same state.
    bar = ProgressBar((max(args.warmup, 1) + args.iters) * len(runs))
    results = time_interleaved(runs, device, args.iters, args.warmup,
                               progress=lambda done, total: bar.update(),
                               names=names)
    sys.stdout.write('\n')
    profiles = {}
    if args.ort_profile:
        from shufflenet_det.deploy.profile import profile_session
        from shufflenet_det.deploy.inputs import graph_input
        for kind in ort_backends:
            m = ort_models[kind]
            profiles[kind] = profile_session(
                m.path, {'input': graph_input(images, m.fill, m.padded)},
                threads=m.threads)
    tmp.cleanup()
    for name, kind, m, res in zip(names, kinds, models, results):
        res.update(name=name, backend='pytorch' if kind == 'peer' else kind,
                   images_per_s=args.batch_size / res['median_s'],
                   min_s=min(res['times']),
                   params_m=sum(p.numel() for p in m.parameters()) / 1e6)

    env = environment(device)
    print(f'device: {describe_device(env)}; batch {args.batch_size}, '
          f'{args.shape[0]}x{args.shape[1]}, {"fp16" if args.fp16 else "fp32"}'
          f'{", channels-last" if args.channels_last else ""}, {args.warmup} '
          f'warm-up and {args.iters} timed runs')
    if rewrites:
        print('ours in PyTorch: ' + ', '.join(
            (['BatchNorm folded'] if rewrites['batchnorm_folded'] else [])
            + (['channels-last'] if rewrites['channels_last'] else [])))
    print(f'{"model":<50} {"images/s":>9} {"ms/batch":>9} {"peak MiB":>9}')
    for r in results:
        print(f'{r["name"]:<50} {r["images_per_s"]:>9.2f} '
              f'{1000 * r["median_s"]:>9.1f} {r["peak_mem_mb"]:>9.0f}'
              + ('  (noisy: IQR > 10% of the median)' if r['noisy'] else ''))
    if args.peer:
        peer_ips = results[-1]['images_per_s']
        ratios = [f'{r["images_per_s"] / peer_ips:.2f}x'
                  + (f' ({BACKENDS[k]})' if len(kinds) > 2 else '')
                  for r, k in zip(results[:-1], kinds)]
        print(f'speed ratio (ours / peer): {", ".join(ratios)}')
        if args.iters > 1:
            fastest = [f'{results[-1]["min_s"] / r["min_s"]:.2f}x'
                       for r in results[:-1]]
            print(f'fastest runs\' ratio: {", ".join(fastest)}')
    if profiles:
        from shufflenet_det.deploy.profile import format_profiles
        runs = next(iter(profiles.values()))['runs']
        print(f'ONNX Runtime\'s profile (kernel ms per batch, mean of {runs} '
              'profiled runs):')
        print(format_profiles({BACKENDS[k]: p for k, p in profiles.items()}))
    if args.json:
        info = dict(environment=env, settings=dict(
            config=args.config, checkpoint=args.checkpoint, fp16=args.fp16,
            channels_last=args.channels_last, batch_size=args.batch_size,
            shape=args.shape, iters=args.iters, warmup=args.warmup,
            peer=args.peer, backends=backends, pytorch_rewrites=rewrites),
            results=results, ort_profiles=profiles)
        with open(args.json, 'w') as f:
            json.dump(info, f, indent=2)
    return results


if __name__ == '__main__':
    main()
