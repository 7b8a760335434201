"""What the command-line tools share: user-facing errors."""
import os
import os.path as osp
import sys
import tempfile
import traceback
from contextlib import contextmanager


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
