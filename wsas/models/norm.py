"""Batch and group normalisation that stay fast on CPU for channels-last feature maps.

PyTorch's CPU batch norm for channels-last input vectorises over the channel axis, which is slow
for the U-Net's narrow full-resolution layers (8 channels). Channels-last memory is a
``(pixels, C)`` matrix; viewed ``k`` pixels per row, ``(pixels / k, k * C)`` with ``k * C`` up to
64, the statistics are column sums and the normalisation a row-broadcast ``addcmul``, all
vectorised. :class:`BatchNorm2d` is :class:`torch.nn.BatchNorm2d` in training mode, running
statistics included; under bf16 autocast it computes in the input's precision where torch
computes in float32, so its error is somewhat larger than torch's own (bounded in
tests/test_norm.py). Anything else (wider layers, other layouts or dtypes, eval mode, CUDA)
takes PyTorch's kernel.

:class:`GroupNorm` keeps PyTorch's forward but replaces its slow CPU backward for channels-last
bfloat16 maps (TinyCLAP's critic under autocast) with the same wide-row sums, per sample, on the
input centred on its group means (so that they do not cancel at large means). It computes the
backward in bf16 where torch computes in float32 and rounds once; tests/test_norm.py bounds the
difference. Why it pays, and by how much, is measured by ``wsas bench`` (results/bench.json).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

NARROW = 8  # channels up to which the wide-row path is faster (16 and 64 channels: slower)
GROUP_NARROW = 64  # group norm: the wide-row backward is faster up to 64 channels, not at 128
_ROW = 64  # elements per wide row, at most
_CHUNK = 32  # a reduced-precision input is summed in chunks of rows, then in float32 (no copy)


def _wide_rows(x: torch.Tensor, per_sample: bool = False) -> tuple[torch.Tensor, int]:
    """Channels-last ``(N, C, H, W)`` -> its memory as rows ``(N * H * W / k, k * C)``, ``k`` =
    ``64 // C`` halved until it divides the pixels (of each sample, with ``per_sample``: no row
    then spans two samples); and ``k``."""
    c = x.shape[1]
    pixels = x.permute(0, 2, 3, 1).view(-1, c)
    k = max(1, _ROW // c)
    while (x.shape[2] * x.shape[3] if per_sample else pixels.shape[0]) % k:
        k //= 2
    return pixels.view(-1, k * c), k


def _channel_sums(rows: torch.Tensor, k: int) -> torch.Tensor:
    """Float32 per-channel sums ``(..., C)`` of wide ``rows (..., R, k * C)`` (over ``R``)."""
    if rows.dtype != torch.float32 and rows.shape[-2] % _CHUNK == 0:
        chunks = rows.view(*rows.shape[:-2], -1, _CHUNK, rows.shape[-1])
        rows = chunks.sum(-2)  # partial sums, float accumulation
    return rows.sum(-2, dtype=torch.float32).view(*rows.shape[:-2], k, -1).sum(-2)


def _per_row(v: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    """Per-channel values ``(..., C)`` laid out along a wide row ``(..., k * C)``."""
    return v.repeat(*[1] * (v.dim() - 1), k).to(dtype)


def _grad_input(grad_y, grad_rows, a, x_rows, b, c, per_sample: bool = False) -> torch.Tensor:
    """A norm's input gradient ``grad_rows * a + x_rows * b + c``, computed over wide rows (the
    coefficients laid out along them) into a tensor shaped and laid out as ``grad_y``."""
    grad_x = torch.empty_like(grad_y)
    grad_x_rows = _wide_rows(grad_x, per_sample)[0].view(grad_rows.shape)
    torch.addcmul(c, grad_rows, a, out=grad_x_rows)
    grad_x_rows.addcmul_(x_rows, b)
    return grad_x


class _WideBatchNorm(torch.autograd.Function):
    """Training-mode batch norm of channels-last ``x``; returns ``y``, the batch mean and the
    biased batch variance ``(C,)`` (E[x^2] - mean^2, in float32)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        rows, k = _wide_rows(x)
        count = x.numel() // x.shape[1]
        mean = _channel_sums(rows, k) / count
        var = (_channel_sums(rows * rows, k) / count - mean**2).clamp_min(0)
        invstd = torch.rsqrt(var + eps)
        scale = weight * invstd
        y = torch.empty_like(x)
        shift = _per_row(bias - mean * scale, k, x.dtype)
        torch.addcmul(shift, rows, _per_row(scale, k, x.dtype), out=_wide_rows(y)[0])
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.count = count
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y, _grad_mean, _grad_var):
        x, weight, mean, invstd = ctx.saved_tensors
        grad_y = grad_y.contiguous(memory_format=torch.channels_last)
        rows, k = _wide_rows(x)
        grad_rows, _ = _wide_rows(grad_y)
        count = ctx.count
        sum_g = _channel_sums(grad_rows, k)
        sum_g_xhat = (_channel_sums(grad_rows * rows, k) - mean * sum_g) * invstd
        # dx = w invstd (g - mean(g) - xhat mean(g xhat)) = g * a + x * b + c, per channel
        a = weight * invstd
        b = -a * invstd * sum_g_xhat / count
        c = -a * sum_g / count - b * mean
        a, b, c = (_per_row(v, k, x.dtype) for v in (a, b, c))
        return _grad_input(grad_y, grad_rows, a, rows, b, c), sum_g_xhat, sum_g, None


class BatchNorm2d(nn.BatchNorm2d):
    """:class:`torch.nn.BatchNorm2d` (same parameters, buffers and checkpoints) that trains narrow
    channels-last maps on CPU with the wide-row path above (float32 parameters; float32 or
    bfloat16 input, as under CPU autocast)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = (
            self.training
            and x.dim() == 4
            and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.bfloat16)
            and self.affine
            and self.track_running_stats
            and self.momentum is not None
            and self.weight.dtype == self.running_mean.dtype == torch.float32
            and x.shape[1] <= NARROW
            and x.numel() > x.shape[1]
            and x.is_contiguous(memory_format=torch.channels_last)
        )
        if not wide:
            return super().forward(x)
        y, mean, var = _WideBatchNorm.apply(x, self.weight, self.bias, self.eps)
        with torch.no_grad():
            count = x.numel() // x.shape[1]
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * count / (count - 1), self.momentum)
            self.num_batches_tracked.add_(1)
        return y


class _GroupNormWideBackward(torch.autograd.Function):
    """Group norm of channels-last ``x`` (N, C, H, W): PyTorch's forward; a backward from
    per-sample channel sums over wide rows ``(N, H * W / k, k * C)``."""

    @staticmethod
    def forward(ctx, x, weight, bias, groups, eps):
        n, c, h, w = x.shape
        y, mean, rstd = torch.ops.aten.native_group_norm(x, weight, bias, n, c, h * w, groups, eps)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.groups = groups
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        x, weight, mean, rstd = ctx.saved_tensors
        n, c = x.shape[:2]
        groups = ctx.groups
        count = x.numel() // (n * groups)  # elements of one group of one sample

        def per_channel(v):  # (N, G) or (N, G, 1) -> (N, C)
            return v.reshape(n, groups, 1).expand(n, groups, c // groups).reshape(n, c)

        def per_row(v):  # (N, C) -> (N, 1, k * C) in the input's precision
            return _per_row(v, k, x.dtype).unsqueeze(1)

        grad_y = grad_y.contiguous(memory_format=torch.channels_last)
        rows, k = _wide_rows(x, per_sample=True)
        rows = rows.view(n, -1, rows.shape[-1])  # (N, H * W / k, k * C)
        grad_rows = _wide_rows(grad_y, per_sample=True)[0].view(rows.shape)
        # x centred on its group's mean as rounded to x's precision (exact for nearby values),
        # so the products below do not cancel at large means; ``shift`` is what rounding moved
        mean, rstd = per_channel(mean.float()), per_channel(rstd.float())
        mean_rows = per_row(mean)
        centred = rows - mean_rows
        shift = mean_rows[:, 0, :c].float() - mean
        sum_g = _channel_sums(grad_rows, k)  # (N, C)
        sum_g_xhat = (_channel_sums(grad_rows * centred, k) + shift * sum_g) * rstd

        # dx = rstd (w g - mean(w g) - xhat mean(w g xhat)) over each group, as
        # g * a + centred * b + offset per sample and channel (x always needs it: GroupNorm)
        def group_mean(v):
            return per_channel((weight * v).view(n, groups, -1).sum(-1) / count)

        a = rstd * weight
        b = -rstd * rstd * group_mean(sum_g_xhat)
        offset = -rstd * group_mean(sum_g) + b * shift
        a, b, offset = (per_row(v) for v in (a, b, offset))
        grad_x = _grad_input(grad_y, grad_rows, a, centred, b, offset, per_sample=True)
        grad_weight = grad_bias = None
        if ctx.needs_input_grad[1]:
            grad_weight = sum_g_xhat.sum(0)
        if ctx.needs_input_grad[2]:
            grad_bias = sum_g.sum(0)
        return grad_x, grad_weight, grad_bias, None, None


class GroupNorm(nn.GroupNorm):
    """:class:`torch.nn.GroupNorm` (same parameters and checkpoints) whose backward for
    channels-last bfloat16 maps of up to 64 channels on CPU that need a gradient (float32 affine
    parameters) uses the wide-row sums above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = (
            torch.is_grad_enabled()
            and x.requires_grad
            and x.dim() == 4
            and x.numel() > 0
            and x.device.type == "cpu"
            and x.dtype == torch.bfloat16
            and x.shape[1] <= GROUP_NARROW
            and self.affine
            and self.weight.dtype == torch.float32
            and x.is_contiguous(memory_format=torch.channels_last)
        )
        if not wide:
            return super().forward(x)
        return _GroupNormWideBackward.apply(x, self.weight, self.bias, self.num_groups, self.eps)
