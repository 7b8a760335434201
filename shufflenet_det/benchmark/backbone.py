"""Forward speed of backbones alone, beside a peer from outside the
project measured in the same run: torchvision's ``shufflenet_v2_x1_0``
feature extractor (conv1 to conv5, random weights), the network our
ShuffleNet v2 1x reimplements (``tools/analysis/backbone_speed.py`` is the
command line, on the Table 7 backbones)."""
import statistics

import torch

from .timing import time_interleaved

PEER = 'torchvision shufflenet_v2_x1_0 (conv1..conv5)'


def torchvision_peer():
    """torchvision's ShuffleNet V2 1x up to conv5 (random weights)."""
    import torchvision
    net = torchvision.models.shufflenet_v2_x1_0(weights=None)
    return torch.nn.Sequential(net.conv1, net.maxpool, net.stage2,
                               net.stage3, net.stage4, net.conv5)


def time_backbones(models, inputs, iters, warmup, device, log=print):
    """Seconds per forward of each model on ``inputs``, their timed runs in
    turn, round after round (:func:`~.timing.time_interleaved`, the
    project's one timing loop: eval mode under ``torch.inference_mode``,
    at least one untimed run each first).

    Args:
        models (dict[str, nn.Module]): name -> model (eval mode, on device).
        inputs (Tensor): the batch.
        iters (int): timed rounds.
        warmup (int): untimed runs of each model first.
        log (callable): told when each round is done.

    Returns:
        dict[str, list[float]]: name -> the timed seconds of each round.
    """
    runs = [lambda m=model: m(inputs) for model in models.values()]
    n, untimed = len(runs), max(warmup, 1)

    def progress(done, total):
        if done % n == 0:
            r = done // n
            kind = 'warm-up' if r <= untimed else 'timed'
            log(f'round {r}/{total // n} ({kind}) done')

    results = time_interleaved(runs, device, iters, warmup, progress,
                               names=list(models))
    return {name: res['times'] for name, res in zip(models, results)}


def speed_row(times, batch_size, peer_times=None):
    """A model's median seconds, images/s and ratio to the peer's images/s
    (None without a peer), from the timed runs."""
    median = statistics.median(times)
    ips = batch_size / median
    peer_ips = (batch_size / statistics.median(peer_times)
                if peer_times else None)
    return dict(median_s=round(median, 4),
                times_s=[round(t, 4) for t in times],
                images_per_s=round(ips, 3),
                ratio_to_peer=round(ips / peer_ips, 3) if peer_ips else None)


def report_lines(rows):
    """The table of backbone speeds: each row's ``name``, ``median_s``,
    ``images_per_s``, ``ratio_to_peer`` and ``paper_gpu_images_per_s``."""
    lines = [f'{"backbone":<46} {"median s":>9} {"images/s":>9} '
             f'{"vs peer":>8} {"paper GPU*":>10}']
    for r in rows:
        ratio = '' if r['ratio_to_peer'] is None else \
            f'{r["ratio_to_peer"]:.2f}'
        paper = '' if r['paper_gpu_images_per_s'] is None else \
            str(r['paper_gpu_images_per_s'])
        lines.append(f'{r["name"]:<46} {r["median_s"]:>9.3f} '
                     f'{r["images_per_s"]:>9.2f} {ratio:>8} {paper:>10}')
    return lines
