"""What the project's four backbone families share: the ``out_indices``,
``frozen_stages``, ``norm_eval`` and ``with_cp`` arguments, freezing, the
training mode, the default initialisation, and gradient checkpointing of
their units."""
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm


class BaseUnit(BaseModule):
    """A building block whose ``_forward`` runs under gradient
    checkpointing when ``with_cp`` (saves memory, costs a second forward in
    backward), as mmpretrain's units do.

    Args:
        with_cp (bool): gradient checkpointing. Default: False.
        init_cfg (dict, optional): initialisation config. Default: None.
    """

    def __init__(self, with_cp=False, init_cfg=None):
        super().__init__(init_cfg)
        self.with_cp = with_cp

    def _forward(self, x):
        raise NotImplementedError

    def forward(self, x):
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


class BaseBackbone(BaseModule):
    """Base of :class:`ShuffleNetV1`, :class:`ShuffleNetV2`,
    :class:`MobileNetV2Paper` and :class:`LightXception`, after mmpretrain's
    ``BaseBackbone`` and the ``_freeze_stages`` + ``train(mode)`` of its
    ShuffleNet V2 and MobileNet V2.

    A subclass has a stem ``self.conv1`` and stages, the i-th returned by
    :meth:`stage` (``self.layers[i]`` unless overridden); it declares its
    outputs (``out_names``, by out index) and the stages ``frozen_stages``
    may freeze (``num_stages``: ``len(stage_blocks)`` unless overridden). It
    checks its own arguments, calls ``__init__`` here, then builds its
    layers; ``init_weights`` and ``forward`` are its own.

    Unlike mmpretrain's ShuffleNet V2, a frozen stem is also put in eval
    mode, so its BN statistics stay frozen with its weights.

    Args:
        out_indices (Sequence[int]): outputs to return, indices into
            ``out_names``.
        frozen_stages (int): -1 freezes nothing; 0 freezes conv1; k in
            1..``num_stages`` freezes conv1 and the first k stages. Frozen
            modules get ``requires_grad=False`` and stay in eval mode.
        norm_eval (bool): keep all BN layers in eval mode (frozen
            statistics) in training, as detection fine-tuning does.
        with_cp (bool): gradient checkpointing of the blocks.
        init_cfg (dict or list[dict], optional): initialisation config.
    """

    #: names of the outputs, by out index
    out_names = ()
    #: said after the names when an out index is invalid
    out_indices_note = None

    @classmethod
    def _check_choice(cls, arg, value, valid):
        """Stop on an architecture argument outside its table, listing the
        valid values (called before ``__init__``, so from the class)."""
        if value not in valid:
            raise ValueError(f'{cls.__name__}: unsupported {arg} {value}; '
                             f'valid: {sorted(valid)}')

    @property
    def num_stages(self):
        """How many stages ``frozen_stages`` may freeze (the stem aside)."""
        return len(self.stage_blocks)

    def __init__(self, out_indices, frozen_stages, norm_eval, with_cp,
                 init_cfg=None):
        super().__init__(init_cfg)
        name = type(self).__name__
        if not all(i in range(len(self.out_names)) for i in out_indices):
            names = ', '.join(self.out_names)
            if self.out_indices_note:
                names += f'; {self.out_indices_note}'
            raise ValueError(
                f'{name}: out_indices {tuple(out_indices)} must be in '
                f'0..{len(self.out_names) - 1} ({names})')
        if frozen_stages not in range(-1, self.num_stages + 1):
            raise ValueError(
                f'{name}: frozen_stages must be in -1..{self.num_stages}, '
                f'got {frozen_stages}')
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp

    def stage(self, i):
        """The i-th stage (0-based), as ``frozen_stages`` counts them."""
        return self.layers[i]

    def forward(self, x):
        """The ShuffleNet layout: ``conv1``, ``maxpool``, then ``layers``,
        returning the outputs of ``out_indices`` (MobileNet V2 and Xception
        override it)."""
        x = self.maxpool(self.conv1(x))
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _kaiming_init(self):
        """Kaiming normal convs (fan-out, ReLU), BN at 1/0, as torchvision.

        mmengine does not reach the ConvModules inside ``layers`` (a
        ModuleList or Sequential has no ``init_weights``), hence a loop over
        all the modules."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out',
                                        nonlinearity='relu')
            elif isinstance(m, _BatchNorm):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _freeze_stages(self):
        if self.frozen_stages < 0:
            return
        frozen = [self.conv1]
        frozen += [self.stage(i) for i in range(self.frozen_stages)]
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode=True):
        """Set the mode, then re-apply ``frozen_stages`` and ``norm_eval``."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
