"""The GPU half of Table 7 in one run: the CUDA pre-flight, every cell and
the peer timed in fp32 and fp16, one training step of one cell on the
device, and a device-vs-CPU detection parity check; table7.json, table7.md
and table7.png in the output directory. tools/gpu_table7.sh runs the offline
set-up first and then this (docs/gpu.md).

    python tools/gpu_table7.py --out-dir work_dirs/table7_gpu
    python tools/gpu_table7.py --out-dir OUT --cells shufflenetv2_140m \
        mobilenetv2_140m --precisions fp32        # a cut, for less time
    python tools/gpu_table7.py --out-dir OUT --device cpu --quick  # the test

Order, so that a run cut off keeps what matters most: the pre-flight, then
for each precision the cells level by level (the families of a level timed
round-robin, as tools/table7.py does) and the peer, then the two checks.
The JSON and the Markdown table are rewritten as soon as each level's cells
(and the peer) are measured, each phase with its status and seconds, so a
partial run leaves a partial table; ``complete`` is true only at the end.
A phase that fails is recorded with its error and the next one runs; the
exit status is 1 if any failed. (shufflenet_det.table7.gpu)
"""
import argparse
import sys

import torch

from shufflenet_det import table7
from shufflenet_det.table7.configs import WORK_DIRS
from shufflenet_det.table7.gpu import CELL_NAMES, GPUSettings, run


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out-dir', required=True,
                   help='table7.json, table7.md and table7.png go here')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available()
                   else 'cpu', choices=['cuda', 'cpu'])
    p.add_argument('--precisions', nargs='+', choices=['fp32', 'fp16'],
                   default=['fp32', 'fp16'])
    p.add_argument('--families', nargs='+', default=list(table7.FAMILIES),
                   choices=table7.FAMILIES)
    p.add_argument('--levels', nargs='+', default=list(table7.LEVELS),
                   choices=table7.LEVELS)
    p.add_argument('--cells', nargs='+', choices=sorted(CELL_NAMES),
                   metavar='FAMILY_LEVEL',
                   help='only these cells, e.g. shufflenetv2_140m '
                   '(instead of --families x --levels)')
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--shape', type=int, nargs=2, default=[800, 1200],
                   metavar=('H', 'W'))
    p.add_argument('--iters', type=int, default=None,
                   help='timed runs per cell (default 20 on CUDA, 3 on CPU)')
    p.add_argument('--warmup', type=int, default=None,
                   help='untimed runs per cell first (default 5 on CUDA, '
                   '1 on CPU; cuDNN picks its algorithms in the first)')
    p.add_argument('--quick', action='store_true',
                   help='one warm-up and one timed run per cell: checks the '
                   'command (on a CPU, fp16 included)')
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--no-peer', dest='peer', action='store_false',
                   help='do not time torchvision\'s detector')
    p.add_argument('--no-checks', dest='checks', action='store_false',
                   help='skip the training step and the parity check')
    p.add_argument('--check-cell', default='shufflenetv2_40m',
                   choices=sorted(CELL_NAMES),
                   help='the cell of the training step and the parity check')
    p.add_argument('--parity-images', type=int, default=2)
    p.add_argument('--work-dirs', default=WORK_DIRS,
                   help='where trained cells\' logs are (their mmAP)')
    return p.parse_args(argv)


def main(argv=None):
    # GPUSettings resolves the defaults that depend on the device and the
    # cells' order; the device is checked first, before any model is built.
    return run(GPUSettings(**vars(parse_args(argv))))


if __name__ == '__main__':
    sys.exit(main())
