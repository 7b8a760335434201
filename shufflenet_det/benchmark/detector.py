"""Inference speed of a detector as Table 7 times it (host images to final
detections, host-to-device copy included), in one or several backends and
beside torchvision's peer, timed round-robin in the same run
(``tools/analysis/benchmark.py`` is the command line).

Backends of our detector: ``pytorch`` (BatchNorm folded, on the CPU weights
and images in channels-last layout: :func:`~shufflenet_det.deploy.
optimize.optimize_for_inference`), ``pytorch-as-built`` (as mmdet builds
it), ``onnxruntime`` (the detector exported to one ONNX graph for the batch
size and shape, padded to multiples of 32, in ONNX Runtime on the CPU;
stacking the images as float32 RGB and padding with the mean colour is
part of the timed run, as mmdet's pre-processing is part of PyTorch's) and
``onnxruntime-int8`` (that graph quantised to int8, calibrated on the
benchmark's own images), ``openvino`` (the same graph in OpenVINO on the
CPU, at the inference precision asked, f32 by default, and read back),
``openvino-bf16`` (the same graph at bf16, beside f32 in the same run; CPUs
with AVX-512 BF16 or AMX) and ``openvino-int8`` (its NNCF int8 IR, the
same parts quantised and calibrated on the same images as
``onnxruntime-int8``).

Every row has the median and the interquartile range of its timed runs,
and the 50th and 95th percentiles (``p50_s``, ``p95_s``; the report shows
them with ``latency``): at batch 1, the latency a CPU server sees.
"""
import copy
import importlib
import os.path as osp
import sys
import tempfile

import numpy as np
import torch

from ..deploy.optimize import optimize_for_inference, use_channels_last
from ..deploy.runtime import OpenVINOGraph, OrtGraph, export_padded
from ..utils.inputs import mmdet_batch
from .peer import PEER, build_peer
from .timing import describe_device, time_interleaved

BACKENDS = {'pytorch': 'PyTorch', 'pytorch-as-built': 'PyTorch as built',
            'onnxruntime': 'ONNX Runtime',
            'onnxruntime-int8': 'ONNX Runtime int8', 'openvino': 'OpenVINO',
            'openvino-bf16': 'OpenVINO bf16', 'openvino-int8': 'OpenVINO int8'}
ORT_BACKENDS = ('onnxruntime', 'onnxruntime-int8')
OV_BACKENDS = ('openvino', 'openvino-bf16', 'openvino-int8')
#: the percentiles of the timed runs that every row has.
PERCENTILES = (50, 95)


class BenchmarkError(ValueError):
    """Settings that cannot be timed together; the message says what to
    do."""


def check_settings(backends, device, fp16=False, ov_precision='f32'):
    """Refuse fp16 off CUDA, an ONNX Runtime or OpenVINO backend off the
    CPU or with fp16, or without its runtime installed, and an OpenVINO
    precision the CPU cannot run."""
    if fp16 and torch.device(device).type != 'cuda':
        raise BenchmarkError('--fp16 is for CUDA devices; drop it on CPU.')
    graph_backends = [b for b in backends if b in ORT_BACKENDS + OV_BACKENDS]
    if not graph_backends:
        return
    if torch.device(device).type != 'cpu' or fp16:
        raise BenchmarkError(f'--backend {graph_backends[0]} runs on the '
                             'CPU, without autocast: use --device cpu, '
                             'without --fp16.')
    # The graph is exported with onnx for both runtimes.
    needs = ['onnx'] + (['onnxruntime'] if set(backends) & set(ORT_BACKENDS)
                        else [])
    try:
        for module in needs:
            importlib.import_module(module)
    except ImportError:
        raise BenchmarkError(f'--backend {graph_backends[0]} needs onnx and '
                             'onnxruntime: pip install -e .[deploy] (make '
                             'setup installs them).') from None
    if set(backends) & set(OV_BACKENDS):
        from ..deploy.openvino import check_precision, require
        from ..deploy.wrapper import DeployError
        try:
            require()
            if 'openvino-int8' in backends:
                require('nncf')
            check_precision(ov_precision)
            if 'openvino-bf16' in backends:
                check_precision('bf16')
        except DeployError as e:
            raise BenchmarkError(str(e)) from None


def graph_label(kind, graph):
    """A graph backend's name in the report: OpenVINO's with the precision
    its compiled model runs (read back; an int8 IR runs the rest at it)."""
    if kind in ('openvino', 'openvino-bf16'):
        return f'OpenVINO {graph.precision}'
    if kind == 'openvino-int8':
        return f'OpenVINO int8 + {graph.precision}'
    return BACKENDS[kind]


def export_graphs(model, images, backends, shape, path, threads,
                  ov_precision='f32'):
    """``model`` exported once (:func:`~..deploy.runtime.export_padded`,
    to ``path``) and opened in each graph backend of ``backends``: ``{kind:
    graph}``. Both int8 graphs are calibrated on ``images`` (the same
    batches). ``openvino-bf16`` is the graph compiled at bf16, whatever
    ``ov_precision`` (the precision of ``openvino`` and of the int8 IR's
    other layers)."""
    fill = export_padded(model, len(images), shape, path)
    root = osp.splitext(path)[0]
    graphs = {}
    if set(backends) & set(ORT_BACKENDS):
        graphs['onnxruntime'] = OrtGraph(path, threads, fill)
        if 'onnxruntime-int8' in backends:
            graphs['onnxruntime-int8'] = graphs['onnxruntime'].int8(
                root + '_int8.onnx', images)
    if set(backends) & set(OV_BACKENDS):
        graphs['openvino'] = OpenVINOGraph(path, threads, fill, ov_precision)
        if 'openvino-bf16' in backends:
            graphs['openvino-bf16'] = OpenVINOGraph(path, threads, fill,
                                                    'bf16')
        if 'openvino-int8' in backends:
            graphs['openvino-int8'] = graphs['openvino'].int8(
                root + '_int8.xml', images)
    return graphs


def benchmark_detector(model, images, name, device, backends=('pytorch', ),
                       iters=5, warmup=1, fp16=False, channels_last=False,
                       peer=False, shape=(800, 1200), threads=None,
                       profile=False, progress=True, ov_precision='f32'):
    """Time ``model`` (a detector on ``device``, as
    :func:`shufflenet_det.apis.build_detector` builds it) on ``images``
    (host uint8 images of ``shape``) in each of ``backends``, and
    torchvision's peer if ``peer``, their timed runs round-robin
    (:func:`~.timing.time_interleaved`).

    ``fp16`` autocasts (CUDA); ``channels_last`` puts the PyTorch models'
    weights and images (ours as built and the peer's) in channels-last
    layout; ``threads``: ONNX Runtime's and OpenVINO's intra-op threads
    (default: torch's); ``ov_precision``: OpenVINO's inference precision.
    ``profile`` adds each runtime's own per-node profile of each graph
    backend (:func:`shufflenet_det.deploy.profile.profile_session`,
    :func:`~shufflenet_det.deploy.profile.profile_openvino`).

    Returns:
        dict: ``results`` (one dict per timed model: ``name``, ``backend``,
        the times and their statistics, ``p50_s``, ``p95_s``,
        ``images_per_s``, ``min_s``, ``params_m``; OpenVINO's:
        ``precision``, read back), ``kinds`` (the backend of each,
        ``'peer'`` for the peer), ``labels`` (how the report names each
        backend), ``backends``, ``rewrites`` (the PyTorch path's:
        ``batchnorm_folded``, ``channels_last``) and ``profiles``.
    """
    device = torch.device(device)
    batch_size = len(images)

    def autocast():
        return torch.autocast(device.type, dtype=torch.float16,
                              enabled=fp16)

    backends = list(dict.fromkeys(backends))
    check_settings(backends, device, fp16, ov_precision)
    graph_backends = [b for b in backends if b in ORT_BACKENDS + OV_BACKENDS]
    batch = mmdet_batch(images)
    names, labels, kinds, models, runs = [], [], [], [], []
    tmp = tempfile.TemporaryDirectory()
    graphs = {}
    if graph_backends:
        # Exported before the PyTorch rewrites (the exporter and the
        # runtimes fold BatchNorm themselves).
        graphs = export_graphs(model, images, backends, shape,
                               osp.join(tmp.name, 'model.onnx'),
                               threads or torch.get_num_threads(),
                               ov_precision)
    rewrites = {}
    for kind in ('pytorch', 'pytorch-as-built'):
        if kind not in backends:
            continue
        ours = model
        if kind == 'pytorch':
            if 'pytorch-as-built' in backends:
                ours = copy.deepcopy(model)
            rewrites = optimize_for_inference(
                ours, channels_last=True if channels_last else None)
        elif channels_last:
            use_channels_last(ours, ours.backbone)

        def run_ours(ours=ours):
            with autocast():
                return ours.test_step(batch)

        names.append(name + (' (as built)' if kind == 'pytorch-as-built'
                             else ''))
        labels.append(BACKENDS[kind])
        kinds.append(kind)
        models.append(ours)
        runs.append(run_ours)
    for kind in graph_backends:
        labels.append(graph_label(kind, graphs[kind]))
        names.append(f'{name} ({labels[-1]})')
        kinds.append(kind)
        models.append(model)
        runs.append(lambda graph=graphs[kind]: graph(images))
    if peer:
        torch.manual_seed(0)
        peer_model = build_peer(shape).to(device)
        if channels_last:
            use_channels_last(peer_model, peer_model.backbone)

        def run_peer():
            with autocast():
                return peer_model([img.to(device).float().div_(255)
                                   for img in images])

        names.append(PEER)
        labels.append(PEER)
        kinds.append('peer')
        models.append(peer_model)
        runs.append(run_peer)

    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar((max(warmup, 1) + iters) * len(runs))
    results = time_interleaved(
        runs, device, iters, warmup, names=names,
        progress=(lambda done, total: bar.update()) if bar else None)
    if progress:
        sys.stdout.write('\n')
    profiles = {}
    if profile:
        from ..deploy.profile import profile_openvino, profile_session
        for kind in graph_backends:
            g = graphs[kind]
            if kind in OV_BACKENDS:
                profiles[kind] = profile_openvino(
                    g.path, g.inputs(images), g.threads,
                    precision=g.precision)
            else:
                profiles[kind] = profile_session(g.path, g.inputs(images),
                                                 threads=g.threads)
    tmp.cleanup()
    for res, name_, kind, m in zip(results, names, kinds, models):
        # Interpolated as Measurement's median and quartiles are.
        p50, p95 = np.percentile(res['times'], PERCENTILES)
        res.update(name=name_,
                   backend='pytorch' if kind == 'peer' else kind,
                   images_per_s=batch_size / res['median_s'],
                   min_s=min(res['times']), p50_s=p50, p95_s=p95,
                   params_m=sum(p.numel() for p in m.parameters()) / 1e6)
        if kind in OV_BACKENDS:
            res['precision'] = graphs[kind].precision
    return dict(results=results, kinds=kinds, labels=labels,
                backends=backends, rewrites=rewrites, profiles=profiles)


def report_lines(run, env, batch_size, shape, iters, warmup, fp16=False,
                 channels_last=False, latency=False):
    """The benchmark's printed report of ``run`` (:func:`benchmark_detector`)
    on the device of ``env`` (:func:`~.timing.environment`): the settings,
    the PyTorch rewrites, one row per model (with ``latency``, the 50th and
    95th percentiles of its timed runs too), the ratios to the peer and
    runtimes' profiles."""
    results, kinds = run['results'], run['kinds']
    rewrites, profiles = run['rewrites'], run['profiles']
    lines = [f'device: {describe_device(env)}; batch {batch_size}, '
             f'{shape[0]}x{shape[1]}, {"fp16" if fp16 else "fp32"}'
             f'{", channels-last" if channels_last else ""}, {warmup} '
             f'warm-up and {iters} timed runs']
    if rewrites:
        lines.append('ours in PyTorch: ' + ', '.join(
            (['BatchNorm folded'] if rewrites['batchnorm_folded'] else [])
            + (['channels-last'] if rewrites['channels_last'] else [])))
    percentiles = (f' {"p50 ms":>9} {"p95 ms":>9}' if latency else '')
    width = max([50] + [len(r['name']) for r in results])
    lines.append(f'{"model":<{width}} {"images/s":>9} {"ms/batch":>9} '
                 f'{"peak MiB":>9}{percentiles}')
    for r in results:
        percentiles = (f' {1000 * r["p50_s"]:>9.1f} {1000 * r["p95_s"]:>9.1f}'
                       if latency else '')
        lines.append(
            f'{r["name"]:<{width}} {r["images_per_s"]:>9.2f} '
            f'{1000 * r["median_s"]:>9.1f} {r["peak_mem_mb"]:>9.0f}'
            + percentiles
            + ('  (noisy: IQR > 10% of the median)' if r['noisy'] else ''))
    if latency and iters < 20:
        lines.append(f'(p95 of {iters} timed runs: their slowest or near '
                     'it; --iters 20 or more for a percentile to mean much)')
    if kinds and kinds[-1] == 'peer':
        peer_ips = results[-1]['images_per_s']
        ratios = [f'{r["images_per_s"] / peer_ips:.2f}x'
                  + (f' ({label})' if len(kinds) > 2 else '')
                  for r, label in zip(results[:-1], run['labels'])]
        lines.append(f'speed ratio (ours / peer): {", ".join(ratios)}')
        if iters > 1:
            fastest = [f'{results[-1]["min_s"] / r["min_s"]:.2f}x'
                       for r in results[:-1]]
            lines.append(f'fastest runs\' ratio: {", ".join(fastest)}')
    if profiles:
        from ..deploy.profile import format_profiles
        runs = next(iter(profiles.values()))['runs']
        lines.append(f'the runtimes\' own profiles (kernel ms per batch, mean '
                     f'of {runs} profiled runs):')
        lines.append(format_profiles(
            {BACKENDS[k]: p for k, p in profiles.items()}))
    return lines


def benchmark_json(run, env, settings):
    """What the benchmark's ``--json`` holds: the environment, the
    settings (with the backends and the PyTorch rewrites), the results
    and the runtimes' profiles (``profiles``)."""
    settings = dict(settings, backends=run['backends'],
                    pytorch_rewrites=run['rewrites'])
    return dict(environment=env, settings=settings, results=run['results'],
                profiles=run['profiles'])

