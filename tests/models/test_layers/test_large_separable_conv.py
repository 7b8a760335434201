"""LargeSeparableConv: the thin feature map of Light-Head R-CNN."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from shufflenet_det.models.layers import LargeSeparableConv


def test_thin_map_shape_and_channels():
    layer = LargeSeparableConv(in_channels=32)
    x = torch.randn(2, 32, 9, 13)
    out = layer(x)
    # 10 x 7 x 7 = 490 channels, spatial size kept (padding k // 2).
    assert out.shape == (2, 490, 9, 13)
    assert (out >= 0).all()  # ReLU after the sum


def test_structure_matches_the_paper():
    layer = LargeSeparableConv(in_channels=32, mid_channels=64)
    a1, a2 = layer.branch_a
    b1, b2 = layer.branch_b
    # A: k x 1 (C_mid) then 1 x k (C_out); B: 1 x k then k x 1.
    assert (a1.kernel_size, a1.out_channels) == ((15, 1), 64)
    assert (a2.kernel_size, a2.out_channels) == ((1, 15), 490)
    assert (b1.kernel_size, b1.out_channels) == ((1, 15), 64)
    assert (b2.kernel_size, b2.out_channels) == ((15, 1), 490)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                   for m in layer.modules())


def _conv_along(x, w, b, axis):
    """An independent zero-padded 1-D convolution (cross-correlation, as
    ``nn.Conv2d``) of ``x`` (C, H, W) along ``axis`` (1: H, a k x 1 kernel;
    2: W, a 1 x k kernel), in float64 NumPy: the sum over the k taps of the
    weight matrix times the input shifted by the tap, plus the bias."""
    taps = w.reshape(w.shape[0], w.shape[1], -1)  # (O, C, k)
    k = taps.shape[2]
    pad = [(0, 0)] * 3
    pad[axis] = (k // 2, k // 2)
    xp = np.pad(x, pad)
    n = x.shape[axis]
    out = np.zeros((w.shape[0], *x.shape[1:])) + b[:, None, None]
    for t in range(k):
        window = xp[:, t:t + n] if axis == 1 else xp[:, :, t:t + n]
        out += np.einsum('oc,chw->ohw', taps[:, :, t], window)
    return out


def _reference_forward(layer, x):
    """Li et al. 2017, Sec. 3: relu(A(x) + B(x)), A = k x 1 then 1 x k,
    B = 1 x k then k x 1, computed from the layer's weights alone."""
    p = {n: t.detach().double().numpy() for n, t in layer.named_parameters()}
    out = []
    for img in x.double().numpy():
        a = _conv_along(_conv_along(img, p['branch_a.0.weight'],
                                    p['branch_a.0.bias'], 1),
                        p['branch_a.1.weight'], p['branch_a.1.bias'], 2)
        b = _conv_along(_conv_along(img, p['branch_b.0.weight'],
                                    p['branch_b.0.bias'], 2),
                        p['branch_b.1.weight'], p['branch_b.1.bias'], 1)
        out.append(np.maximum(a + b, 0))
    return torch.from_numpy(np.stack(out)).float()


@pytest.mark.parametrize('training', [False, True])
def test_is_the_relu_of_the_two_branches_summed(training):
    """Against a hand-written NumPy forward that uses only the weights (no
    convolution of torch's, none of the layer's submodules): in eval mode
    and in training mode, where the 1 x k convolutions run transposed on
    CPU."""
    torch.manual_seed(0)
    layer = LargeSeparableConv(in_channels=4, mid_channels=3, out_channels=5,
                               kernel_size=5)
    # nn.Conv2d's default init: non-zero biases, mixed-sign sums.
    layer.train(training)
    x = torch.randn(2, 4, 6, 7)
    expected = _reference_forward(layer, x)
    out = layer(x)
    assert out.shape == (2, 5, 6, 7)
    # Both signs before the ReLU, so that the sum-then-ReLU order matters.
    assert 0.2 < (expected > 0).float().mean() < 0.8
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_norm_before_relu():
    """norm_cfg (the from-scratch demo): relu(norm(a + b)); the thin map
    stays alive whatever the scale and sign of the sum."""
    torch.manual_seed(0)
    layer = LargeSeparableConv(in_channels=4, mid_channels=3, out_channels=5,
                               kernel_size=3, norm_cfg=dict(type='BN'))
    assert isinstance(layer.norm, nn.BatchNorm2d)
    assert layer.norm.num_features == 5
    nn.init.constant_(layer.branch_b[1].bias, -50.0)  # sum far below 0
    x = torch.randn(2, 4, 6, 7)
    s = layer.branch_a(x) + layer.branch_b(x)
    expected = torch.relu(torch.nn.functional.batch_norm(
        s, None, None, training=True, eps=layer.norm.eps))
    out = layer(x)
    torch.testing.assert_close(out, expected)
    assert (out > 0).float().mean() > 0.3
    # Without it, the same weights give a dead map.
    plain = LargeSeparableConv(in_channels=4, mid_channels=3, out_channels=5,
                               kernel_size=3)
    plain.load_state_dict(layer.state_dict(), strict=False)
    assert (plain(x) == 0).all()


def test_init_normal_001():
    torch.manual_seed(0)
    layer = LargeSeparableConv(in_channels=256)
    layer.init_weights()
    w = layer.branch_a[0].weight
    assert abs(w.std().item() - 0.01) < 0.001
    assert all((conv.bias == 0).all() for conv in
               [*layer.branch_a, *layer.branch_b])


def test_even_kernel_rejected():
    with pytest.raises(ValueError, match='odd'):
        LargeSeparableConv(in_channels=8, kernel_size=14)


def test_training_on_cpu_matches_plain_convolutions():
    """The 1 x k convolutions run transposed when training on CPU (a
    oneDNN speed quirk): outputs and gradients must be those of the plain
    convolutions with the same weights, and the weights must initialise
    and load as nn.Conv2d's."""
    torch.manual_seed(0)
    layer = LargeSeparableConv(in_channels=6, mid_channels=4, out_channels=5,
                               kernel_size=5)
    layer.init_weights()
    for conv in [*layer.branch_a, *layer.branch_b]:
        assert isinstance(conv, nn.Conv2d)
        assert abs(conv.weight.std().item() - 0.01) < 0.004
    for conv in [*layer.branch_a, *layer.branch_b]:  # non-trivial values
        nn.init.normal_(conv.weight)
        nn.init.normal_(conv.bias)
    layer.train()
    x = torch.randn(2, 6, 7, 9, requires_grad=True)
    # The 1 x k convs take the transposed path in training (checked below
    # against plain convolutions), the plain one in eval.
    assert 'Transpose' in layer.branch_b[0](x).grad_fn.name()
    out = layer(x)
    g = torch.randn_like(out)
    out.backward(g)

    def ref(x):
        F = torch.nn.functional
        (a1, a2), (b1, b2) = layer.branch_a, layer.branch_b
        a = F.conv2d(F.conv2d(x, a1.weight, a1.bias, padding=(2, 0)),
                     a2.weight, a2.bias, padding=(0, 2))
        b = F.conv2d(F.conv2d(x, b1.weight, b1.bias, padding=(0, 2)),
                     b2.weight, b2.bias, padding=(2, 0))
        return torch.relu(a + b)

    x2 = x.detach().clone().requires_grad_()
    params = list(layer.parameters())
    ref_grads = torch.autograd.grad(ref(x2), [x2] + params, g)
    torch.testing.assert_close(out, ref(x.detach()))
    torch.testing.assert_close(x.grad, ref_grads[0])
    for p, rg in zip(params, ref_grads[1:]):
        torch.testing.assert_close(p.grad, rg)
    # Inference gives the same map.
    layer.eval()
    assert 'Convolution' in layer.branch_b[0](x).grad_fn.name()
    torch.testing.assert_close(layer(x.detach()), out.detach())
    # The state dict is that of plain convolutions.
    plain = nn.ModuleDict(dict(
        branch_a=nn.Sequential(nn.Conv2d(6, 4, (5, 1)),
                               nn.Conv2d(4, 5, (1, 5))),
        branch_b=nn.Sequential(nn.Conv2d(6, 4, (1, 5)),
                               nn.Conv2d(4, 5, (5, 1)))))
    plain.load_state_dict(layer.state_dict())
