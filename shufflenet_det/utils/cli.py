"""What the command-line tools share: the options of the tools that run
mmengine's Runner, and user-facing errors."""
import os
import os.path as osp
import sys
import tempfile
import traceback
from contextlib import contextmanager

from mmengine.config import DictAction


def add_training_args(parser, resume_help='the latest complete checkpoint'):
    """``--work-dir``, ``--amp``, ``--auto-scale-lr``, ``--resume``: what
    tools/train.py and tools/pretrain.py take after the config."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true',
        help='enable automatic mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by the actual total batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or with no value from '
        f'{resume_help} in the work_dir')


def add_runner_args(parser, cfg_example=None, data_checks=True,
                    preempt=False):
    """The options every Runner tool ends with: ``--cfg-options``,
    ``--launcher``, ``--skip-data-check`` and ``--check-images`` (with
    ``data_checks``), ``--debug``, ``--preempt-signal`` (with ``preempt``)
    and the launchers' ``--local-rank``. ``cfg_example``: key=value pairs
    shown in the help of --cfg-options."""
    example = f', e.g. {cfg_example}' if cfg_example else ''
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help=f'override settings of the config, key=value pairs{example}')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    if data_checks:
        parser.add_argument(
            '--skip-data-check', action='store_true',
            help='do not check the datasets\' files before starting')
        parser.add_argument(
            '--check-images', nargs='?', const='header',
            choices=['header', 'decode'],
            help='before starting, also read every image\'s header (format '
            'and size; the default) or decode every image, and stop listing '
            'the unreadable ones')
    parser.add_argument(
        '--debug', action='store_true',
        help='show the full traceback of an error')
    if preempt:
        parser.add_argument(
            '--preempt-signal', action='append', default=[], metavar='SIG',
            help='also treat this signal (e.g. USR1, for slurm\'s --signal) '
            'as SIGTERM is: finish the iteration, save a checkpoint, exit '
            'with status 124; repeatable')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_args(parser, argv=None):
    """Parse; pass ``--local-rank`` on as LOCAL_RANK, which mmengine reads."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


class ConfigError(ValueError):
    """A config names something that cannot be used as it is."""


def check_pretrained(cfg):
    """Fail early, with what to do, when the backbone's ImageNet checkpoint
    (a local ``init_cfg`` path) is missing."""
    backbone = cfg.get('model', {}).get('backbone', {})
    init_cfg = backbone.get('init_cfg') or {}
    ckpt = init_cfg.get('checkpoint') if init_cfg.get(
        'type') == 'Pretrained' else None
    if not ckpt or '://' in ckpt or osp.isfile(ckpt):
        return
    raise ConfigError(
        f'model.backbone.init_cfg.checkpoint: {ckpt} not found. This config '
        'fine-tunes an ImageNet-pretrained backbone. Put the weights there: '
        'checkpoints/README.md says where each backbone\'s weights come from '
        '(torchvision or the official releases, converted with '
        'tools/model_converters/), or how to pretrain one with '
        'configs/pretrain/. To train from scratch instead, add '
        '--cfg-options model.backbone.init_cfg=None (expect a lower mAP).')


def worker_error_message(e):
    """The one-line message of an exception, also when torch re-raised it
    from a data-loader worker (its message then holds the worker's whole
    traceback: "Caught X in DataLoader worker process N. Original
    Traceback ...")."""
    msg = str(e) or type(e).__name__
    if isinstance(e, KeyError) and msg.startswith(("'", '"')):
        msg = msg[1:-1]  # KeyError quotes its message
    head, sep, trace = msg.partition('\nOriginal Traceback')
    if sep:
        lines = [ln for ln in trace.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else ''
        where = head.split(' in ', 1)[-1].rstrip('.')  # DataLoader worker N
        msg = f'{last.strip()} (in {where})'
    if 'failed to load image' in msg:  # mmcv's LoadImageFromFile
        msg += ('. The image cannot be decoded: replace it or remove it from '
                'the annotation file (--check-images decode lists all such '
                'images before a run; LoadImageFromFileOrSkip skips them '
                'during training).')
    return msg


@contextmanager
def user_errors(debug=False, log_dir=None):
    """Turn an exception into one clear line on stderr and exit status 1.

    The full traceback goes to ``log_dir/error.log`` (or a temporary file),
    whose path is printed; ``debug=True`` lets the exception through.
    """
    try:
        yield
    except KeyboardInterrupt:
        print('Interrupted.', file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001  (the point is to catch them all)
        if debug:
            raise
        trace = traceback.format_exc()
        try:
            if log_dir:
                os.makedirs(log_dir, exist_ok=True)
                log = osp.join(log_dir, 'error.log')
            else:
                log = tempfile.mkstemp(prefix='shufflenet_det_', suffix='.log')[1]
            with open(log, 'w') as f:
                f.write(trace)
        except OSError:
            log = None
        msg = worker_error_message(e)
        print(f'\nerror: {msg}', file=sys.stderr)
        where = f' (traceback in {log})' if log else ''
        print(f'Run again with --debug for the full traceback{where}.',
              file=sys.stderr)
        sys.exit(1)
