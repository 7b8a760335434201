"""The PyTorch path's inference rewrites: BatchNorm folding and the
channels-last layout."""
import torch

from .fuse import fold_batchnorm


def optimize_for_inference(model, channels_last=None):
    """The PyTorch path's inference rewrites, in place:

    - BatchNorm folded into the convolution before it
      (:func:`shufflenet_det.deploy.fuse.fold_batchnorm`);
    - weights, and the images entering the backbone, in channels-last
      layout (:func:`use_channels_last`), by default on the CPU only: there
      oneDNN runs the depthwise and 1x1 convolutions of the backbones
      without converting NCHW tensors to its own layout and back at every
      convolution (measured on the 2-core CPU of docs/benchmarks.md: the ShuffleNet
      V2* backbone at batch 4, 800x1200 about 1.7x faster).

    Returns:
        dict: ``batchnorm_folded`` (how many), ``channels_last`` (bool).
    """
    model.eval()
    folded = fold_batchnorm(model)
    if channels_last is None:
        params = list(model.parameters())
        channels_last = not params or params[0].device.type == 'cpu'
    if channels_last:
        use_channels_last(model, model.backbone)
    return dict(batchnorm_folded=folded, channels_last=bool(channels_last))


def use_channels_last(model, backbone):
    """Weights, and the images entering ``backbone``, in channels-last
    layout (the batch a detector's own pre-processing assembles is NCHW
    contiguous). Applied alike to our detector and the peer."""
    model.to(memory_format=torch.channels_last)
    backbone.register_forward_pre_hook(lambda module, args: (
        args[0].contiguous(memory_format=torch.channels_last), *args[1:]))
    return model
