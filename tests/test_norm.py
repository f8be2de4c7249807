import pytest
import torch

from wsas.models.norm import BatchNorm2d, GroupNorm


def _matched(reference: torch.nn.Module, fast: torch.nn.Module) -> tuple:
    """``reference`` with seeded non-trivial affine parameters, and ``fast`` loaded with them."""
    torch.manual_seed(0)
    with torch.no_grad():
        reference.weight.uniform_(0.5, 1.5)
        reference.bias.uniform_(-0.5, 0.5)
    fast.load_state_dict(reference.state_dict())
    return reference, fast


def _pair(channels: int) -> tuple[torch.nn.BatchNorm2d, BatchNorm2d]:
    return _matched(torch.nn.BatchNorm2d(channels), BatchNorm2d(channels))


def _run(norm, x, grad):
    x = x.detach().requires_grad_()
    norm.zero_grad()
    y = norm(x)
    y.backward(grad)
    return y, x.grad, norm.weight.grad, norm.bias.grad


# 12 x 10 pixels per map: rows of 8 pixels (64 elements) at 8 channels, of 16 at 4, of 16 (48
# elements) at 3; 7 x 5 pixels per map (odd): rows of fewer pixels. The last case's gradient
# arrives in NCHW order.
@pytest.mark.parametrize(
    "shape,grad_layout",
    [
        ((4, 8, 12, 10), torch.channels_last),
        ((3, 4, 12, 10), torch.channels_last),
        ((3, 3, 12, 10), torch.channels_last),
        ((2, 8, 7, 5), torch.channels_last),
        ((5, 1, 6, 4), torch.channels_last),
        ((4, 8, 12, 10), torch.contiguous_format),
    ],
)
def test_wide_rows_train_as_torch_batch_norm(shape, grad_layout):
    reference, fast = _pair(shape[1])
    x = (3 * torch.randn(shape) + 2).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(shape).contiguous(memory_format=grad_layout)
    for _ in range(2):  # the second step starts from updated running statistics
        expected, got = _run(reference, x, grad), _run(fast, x, grad)
        for e, g in zip(expected, got):
            assert torch.allclose(e, g, atol=1e-4, rtol=1e-4)
    assert type(got[0].grad_fn).__name__ == "_WideBatchNormBackward"
    assert got[0].is_contiguous(memory_format=torch.channels_last)
    assert got[1].is_contiguous(memory_format=torch.channels_last)
    for name, buffer in reference.named_buffers():
        assert torch.allclose(buffer, dict(fast.named_buffers())[name], atol=1e-6)


# the accuracy wsas/models/norm.py documents: float32 as torch's, |mean| up to 20 deviations;
# bf16 within 2.5x of torch's own error (1 % for the parameter gradients, which torch computes
# exactly) up to 2 deviations. 8 x 32 x 16 pixels: chunked sums in bf16; 8 x 31 x 16: not.
@pytest.mark.parametrize(
    "dtype,deviations",
    [(torch.float32, 0.67), (torch.float32, 20.0), (torch.bfloat16, 0.67), (torch.bfloat16, 2.0)],
)
@pytest.mark.parametrize("shape", [(8, 8, 32, 16), (8, 8, 31, 16)])
def test_wide_rows_are_as_close_to_float64_as_torch_is(dtype, deviations, shape):
    reference, fast = _pair(8)
    x = (3 * torch.randn(shape) + 3 * deviations).contiguous(memory_format=torch.channels_last)
    x, grad = x.to(dtype), torch.randn_like(x).to(dtype)  # exactly representable in both
    exact = _run(reference.double(), x.double(), grad.double())
    buffers = [b.clone() for b in reference.buffers()]
    reference.float().load_state_dict(fast.state_dict())
    torch_run, wide_run = _run(reference, x, grad), _run(fast, x, grad)
    assert type(wide_run[0].grad_fn).__name__ == "_WideBatchNormBackward"
    assert wide_run[0].dtype == wide_run[1].dtype == dtype
    for i, (e, t, w) in enumerate(zip(exact, torch_run, wide_run)):
        error, torch_error = (w.double() - e).abs().max(), (t.double() - e).abs().max()
        scale = e.abs().max()
        if dtype == torch.float32:
            assert error <= 1e-4 * scale
        elif i < 2:  # the output and the input gradient
            assert error <= 2.5 * torch_error
        else:
            assert error <= 0.01 * scale
    tolerance = 1e-4 if dtype == torch.float32 else 1e-2  # the running statistics
    for e, w in zip(buffers, fast.buffers()):
        assert torch.allclose(w.double(), e.double(), rtol=tolerance, atol=1e-5)


def test_inplace_activation_after_the_wide_rows_backpropagates():
    reference, fast = _pair(8)
    x = torch.randn(2, 8, 8, 8).contiguous(memory_format=torch.channels_last)
    outs = []
    for norm in (reference, fast):
        xi = x.clone().requires_grad_()
        torch.nn.functional.leaky_relu(norm(xi), 0.2, inplace=True).square().sum().backward()
        outs.append(xi.grad)
    assert torch.allclose(*outs, atol=1e-5)


@pytest.mark.parametrize(
    "case", ["eval", "wide", "contiguous", "momentum_none", "float64", "one_pixel", "no_affine"]
)
def test_other_cases_take_torchs_kernel(case):
    channels = 16 if case == "wide" else 8
    reference, fast = _pair(channels)
    if case == "no_affine":
        reference = torch.nn.BatchNorm2d(channels, affine=False)
        fast = BatchNorm2d(channels, affine=False)
    if case == "eval":
        reference.eval(), fast.eval()
    if case == "momentum_none":
        reference.momentum = fast.momentum = None
    x = torch.randn(1 if case == "one_pixel" else 2, channels, 6, 6)
    if case == "one_pixel":
        x = x[:, :, :1, :1]  # torch's own error: one value per channel
    if case == "float64":
        reference.double(), fast.double()
        x = x.double()
    if case != "contiguous":
        x = x.contiguous(memory_format=torch.channels_last)
    if case == "one_pixel":
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            fast(x)
        return
    y = fast(x)
    assert torch.equal(reference(x), y)
    assert type(y.grad_fn).__name__ != "_WideBatchNormBackward"
    assert torch.equal(reference.running_var, fast.running_var)


def test_checkpoints_are_those_of_torch_batch_norm():
    reference, fast = _pair(8)
    assert list(fast.state_dict()) == list(reference.state_dict())
    with pytest.raises(ValueError, match="expected 4D input"):
        fast(torch.randn(2, 8, 6))


def _group_pair(groups: int, channels: int) -> tuple[torch.nn.GroupNorm, GroupNorm]:
    return _matched(torch.nn.GroupNorm(groups, channels), GroupNorm(groups, channels))


def _relative(error: torch.Tensor, exact: torch.Tensor) -> float:
    return ((error.double() - exact).norm() / exact.norm()).item()


# the accuracy wsas/models/norm.py documents for bf16 channels-last maps: the forward is torch's;
# the input gradient within 2x torch's own error (10x for a gradient that follows the output,
# whose terms cancel: measured 4-8x), the parameter gradients (torch: float32-exact) within
# 0.5 %, at small and large means. 32 channels on 32 x 16 pixels: rows of 2 pixels in chunks;
# 7 x 5 (odd): rows of one pixel; 6 channels in 3 groups: rows of 5 pixels (30 elements); 64
# channels: the widest taken. The gradient that follows the output gives the backward's xhat
# term its weight, and with it the correction for the rounded group means (without it: 20-45x
# torch's error at a mean of 10 deviations).
@pytest.mark.parametrize("deviations", [0.67, 10.0])
@pytest.mark.parametrize(
    "groups,shape,grad_layout,follows_output",
    [
        (8, (4, 32, 32, 16), torch.channels_last, False),
        (8, (4, 32, 32, 16), torch.channels_last, True),
        (8, (3, 32, 7, 5), torch.channels_last, False),
        (3, (2, 6, 5, 7), torch.channels_last, True),
        (8, (2, 64, 8, 8), torch.channels_last, False),
        (8, (4, 32, 32, 16), torch.contiguous_format, False),
    ],
)
def test_group_norm_backward_is_as_close_to_float64_as_torch_is(
    groups, shape, grad_layout, follows_output, deviations
):
    reference, fast = _group_pair(groups, shape[1])
    x = (torch.randn(shape) + deviations).contiguous(memory_format=torch.channels_last).bfloat16()
    grad = torch.randn(shape)
    if follows_output:
        grad = 0.2 * grad + reference(x.float()).detach()
    grad = grad.contiguous(memory_format=grad_layout).bfloat16()
    reference_double = torch.nn.GroupNorm(groups, shape[1]).double()
    reference_double.load_state_dict(reference.state_dict())
    exact = _run(reference_double, x.double(), grad.double())
    torch_run, wide_run = _run(reference, x, grad), _run(fast, x, grad)
    assert type(wide_run[0].grad_fn).__name__ == "_GroupNormWideBackwardBackward"
    assert torch.equal(wide_run[0], torch_run[0])  # torch's own forward
    assert wide_run[1].dtype == torch.bfloat16
    assert wide_run[1].is_contiguous(memory_format=torch.channels_last)
    bound = 10 if follows_output else 2
    assert _relative(wide_run[1], exact[1]) <= bound * _relative(torch_run[1], exact[1])
    for i in (2, 3):  # weight and bias
        assert _relative(wide_run[i], exact[i]) <= 0.005


def test_group_norm_of_a_frozen_critic_computes_the_input_gradient_only():
    reference, fast = _group_pair(8, 32)
    for norm in (reference, fast):
        norm.requires_grad_(False)
    x = (torch.randn(2, 32, 8, 8) + 10).contiguous(memory_format=torch.channels_last).bfloat16()
    grads = []
    for norm in (reference, fast):
        xi = x.detach().requires_grad_()
        y = norm(xi)
        y.square().sum().backward()
        grads.append(xi.grad)
    assert type(y.grad_fn).__name__ == "_GroupNormWideBackwardBackward"
    assert fast.weight.grad is None and fast.bias.grad is None
    assert _relative(grads[1], grads[0].double()) < 0.01


@pytest.mark.parametrize(
    "case", ["float32", "contiguous", "128_channels", "no_grad", "no_affine", "empty"]
)
def test_other_group_norms_take_torchs_kernel(case):
    channels = 128 if case == "128_channels" else 32
    reference, fast = _group_pair(8, channels)
    if case == "no_affine":
        reference, fast = torch.nn.GroupNorm(8, 32, affine=False), GroupNorm(8, 32, affine=False)
    x = torch.randn(0 if case == "empty" else 2, channels, 6, 6)
    if case != "contiguous":
        x = x.contiguous(memory_format=torch.channels_last)
    if case != "float32":
        x = x.bfloat16()
    x.requires_grad_(case != "no_grad")
    y = fast(x)
    assert torch.equal(reference(x), y)
    assert y.grad_fn is None or type(y.grad_fn).__name__ != "_GroupNormWideBackwardBackward"
    assert list(fast.state_dict()) == list(reference.state_dict())
