import pytest
import torch

from wsas.models.norm import BatchNorm2d


def _pair(channels: int, seed: int = 0) -> tuple[torch.nn.BatchNorm2d, BatchNorm2d]:
    torch.manual_seed(seed)
    reference = torch.nn.BatchNorm2d(channels)
    with torch.no_grad():
        reference.weight.uniform_(0.5, 1.5)
        reference.bias.uniform_(-0.5, 0.5)
    fast = BatchNorm2d(channels)
    fast.load_state_dict(reference.state_dict())
    return reference, fast


def _run(norm, x, grad):
    x = x.detach().requires_grad_()
    norm.zero_grad()
    y = norm(x)
    y.backward(grad)
    return y, x.grad, norm.weight.grad, norm.bias.grad


# 12 x 10 pixels per map: rows of 8 pixels (64 elements) at 8 channels, of 16 at 4; 7 x 5 pixels
# per map (odd): rows of fewer pixels
@pytest.mark.parametrize("shape", [(4, 8, 12, 10), (3, 4, 12, 10), (2, 8, 7, 5), (5, 1, 6, 4)])
def test_wide_rows_train_as_torch_batch_norm(shape):
    reference, fast = _pair(shape[1])
    x = (3 * torch.randn(shape) + 2).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    for _ in range(2):  # the second step starts from updated running statistics
        expected, got = _run(reference, x, grad), _run(fast, x, grad)
        for e, g in zip(expected, got):
            assert torch.allclose(e, g, atol=1e-4, rtol=1e-4)
    assert type(got[0].grad_fn).__name__ == "_WideBatchNormBackward"
    assert got[0].is_contiguous(memory_format=torch.channels_last)
    assert got[1].is_contiguous(memory_format=torch.channels_last)
    for name, buffer in reference.named_buffers():
        assert torch.allclose(buffer, dict(fast.named_buffers())[name], atol=1e-6)


def test_bf16_wide_rows_are_as_close_to_float64_as_torch_is():
    reference, fast = _pair(8)
    x = (3 * torch.randn(8, 8, 32, 16) + 2).contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(x)
    exact = _run(reference.double(), x.double(), grad.double())
    reference.float()
    torch_bf16 = _run(reference, x.bfloat16(), grad.bfloat16())
    wide_bf16 = _run(fast, x.bfloat16(), grad.bfloat16())
    assert type(wide_bf16[0].grad_fn).__name__ == "_WideBatchNormBackward"
    assert wide_bf16[0].dtype == wide_bf16[1].dtype == torch.bfloat16
    for e, t, w in zip(exact, torch_bf16, wide_bf16):
        scale = e.abs().max()
        assert (w.double() - e).abs().max() <= 2 * (t.double() - e).abs().max() + 1e-3 * scale


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
    "case", ["eval", "wide", "contiguous", "momentum_none"], ids=lambda c: c.replace("_", "-")
)
def test_other_cases_take_torchs_kernel(case):
    channels = 16 if case == "wide" else 8
    reference, fast = _pair(channels)
    if case == "eval":
        reference.eval(), fast.eval()
    if case == "momentum_none":
        reference.momentum = fast.momentum = None
    x = torch.randn(2, channels, 6, 6)
    if case != "contiguous":
        x = x.contiguous(memory_format=torch.channels_last)
    y = fast(x)
    assert torch.equal(reference(x), y)
    assert type(y.grad_fn).__name__ != "_WideBatchNormBackward"
    assert torch.equal(reference.running_var, fast.running_var)


def test_checkpoints_are_those_of_torch_batch_norm():
    reference, fast = _pair(8)
    assert list(fast.state_dict()) == list(reference.state_dict())
    with pytest.raises(ValueError, match="expected 4D input"):
        fast(torch.randn(2, 8, 6))
