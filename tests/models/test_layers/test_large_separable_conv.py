"""LargeSeparableConv: the thin feature map of Light-Head R-CNN."""
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


def test_is_the_relu_of_the_two_branches_summed():
    torch.manual_seed(0)
    layer = LargeSeparableConv(in_channels=4, mid_channels=3, out_channels=5,
                               kernel_size=3)
    x = torch.randn(1, 4, 6, 7)
    expected = torch.relu(layer.branch_a(x) + layer.branch_b(x))
    torch.testing.assert_close(layer(x), expected)


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
