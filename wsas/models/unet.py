"""A text-conditioned U-Net that predicts one sigmoid mask per query on the log-magnitude STFT.

Two conditionings share the same encoder:

* ``deep``: the query embedding modulates every decoder level and the bottleneck with FiLM
  (``h <- gamma(q) * h + beta(q)``), so the text enters the inner levels of the network.
* ``late``: the decoder is unconditioned and ends in ``late_channels`` feature maps; the query
  embedding is mapped to one weight per map and the mask is their weighted sum (the Sound of
  Pixels / CLIPSep synthesizer).

Efficiency: the mixture is encoded once; only the conditioned part runs per query, with the
``K`` queries of a mixture batched along the batch axis (``late`` runs the whole U-Net once).
Each decoder level's first convolution, over ``[upsampled, skip]`` in a plain U-Net, is split
into a convolution of the upsampled path plus one of the skip (the same function): the skip half
is query-independent, so it runs once per mixture and is broadcast over the queries.

Input normalisation: the log-magnitude is standardised per example (zero mean, unit variance
over frequency and time), so the network sees the same input at any level and no statistics
fitted on training mixtures meet test mixtures of another kind at the input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wsas.models.norm import BatchNorm2d


@dataclass
class UNetConfig:
    n_fft: int = 510
    hop: int = 128
    channels: int = 8  # first level; doubles per level up to 8x
    levels: int = 4  # downsamplings (the paper: 7)
    convs_per_block: int = 2  # of the encoder
    decoder_convs: int = 2  # per decoder block: 1 makes the per-query part of deep ~half as costly
    cond_dim: int = 128  # query embedding width
    conditioning: str = "deep"  # or "late"
    late_channels: int = 32

    def to_dict(self) -> dict:
        return asdict(self)

    def grid_samples(self, samples: int) -> int:
        """The longest length <= ``samples`` whose centred STFT has a multiple of ``2 ** levels``
        frames (``1 + S // hop``), so the U-Net pads nothing in time; ``samples`` itself when
        it is shorter than one such multiple."""
        frames = (1 + samples // self.hop) // 2**self.levels * 2**self.levels
        return min(samples, frames * self.hop - 1) if frames else samples


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)


def _norm_act(channels: int) -> list[nn.Module]:
    return [BatchNorm2d(channels), nn.LeakyReLU(0.2, inplace=True)]


def _convs(c_in: int, c_out: int, n: int) -> nn.Sequential:
    layers = []
    for i in range(n):
        layers += [_conv(c_in if i == 0 else c_out, c_out), *_norm_act(c_out)]
    return nn.Sequential(*layers)


class DecoderBlock(nn.Module):
    """``n`` conv-BN-LeakyReLU layers over ``[upsampled (N, C, F, T), skip]``, the first one split
    in two: ``conv(upsampled) + skip_part`` where ``skip_part = skip_conv(skip)`` is computed once
    per mixture ``(B, C, F, T)`` and broadcast over the ``N / B`` queries of each mixture."""

    def __init__(self, channels: int, n: int):
        super().__init__()
        self.up_conv, self.skip_conv = _conv(channels, channels), _conv(channels, channels)
        self.rest = nn.Sequential(*_norm_act(channels), *_convs(channels, channels, n - 1))

    def forward(self, upsampled: torch.Tensor, skip_part: torch.Tensor) -> torch.Tensor:
        h = self.up_conv(upsampled)
        b, k = skip_part.shape[0], h.shape[0] // skip_part.shape[0]
        h = (h.unflatten(0, (b, k)) + skip_part.unsqueeze(1)).flatten(0, 1)
        return self.rest(h.contiguous(memory_format=torch.channels_last))


class FiLM(nn.Module):
    """Feature-wise affine modulation of ``h (N, C, F, T)`` by a query ``q (N, D)``."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, h: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(q)[:, :, None, None].chunk(2, dim=1)
        return h * (1 + gamma) + beta


class ConditionalUNet(nn.Module):
    """``forward(log_mag (B, F, T), queries (B, K, D)) -> masks (B, K, F, T)`` in [0, 1]."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = c = config
        widths = [c.channels * 2 ** min(i, 3) for i in range(c.levels + 1)]
        self.down = nn.ModuleList(
            [
                _convs(1 if i == 0 else widths[i - 1], widths[i], c.convs_per_block)
                for i in range(c.levels)
            ]
        )
        self.bottleneck = _convs(widths[-2], widths[-1], c.convs_per_block)
        self.upsample = nn.ModuleList(
            [
                nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                for i in reversed(range(c.levels))
            ]
        )
        self.up = nn.ModuleList(
            [DecoderBlock(widths[i], c.decoder_convs) for i in reversed(range(c.levels))]
        )
        deep = c.conditioning == "deep"
        if c.conditioning not in ("deep", "late"):
            raise ValueError(f"conditioning must be 'deep' or 'late', not {c.conditioning!r}")
        self.film = (
            nn.ModuleList([FiLM(c.cond_dim, w) for w in [widths[-1], *reversed(widths[:-1])]])
            if deep
            else None
        )
        out_channels = 1 if deep else c.late_channels
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.query_to_weights = None if deep else nn.Linear(c.cond_dim, c.late_channels + 1)

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        m = 2**self.config.levels
        f, t = x.shape[-2:]
        return F.pad(x, (0, -t % m, 0, -f % m)), (f, t)

    def encode(self, log_mag: torch.Tensor) -> list[torch.Tensor]:
        """The query-independent part of ``(B, F, T)``: each decoder level's skip part, from
        coarse to fine, then the bottleneck output ``(B, C, F', T')``."""
        mean = log_mag.mean(dim=(-2, -1), keepdim=True)
        std = log_mag.std(dim=(-2, -1), keepdim=True)
        x, _ = self._pad(((log_mag - mean) / (std + 1e-5)).unsqueeze(1))  # padding: the mean
        x = x.contiguous(memory_format=torch.channels_last)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        parts = [up.skip_conv(s) for up, s in zip(self.up, reversed(skips))]
        return [*parts, self.bottleneck(x)]

    def decode(self, feats: list[torch.Tensor], queries: torch.Tensor | None) -> torch.Tensor:
        """The conditioned part: ``queries (N, D)`` (N a multiple of B) FiLM-modulate it when
        deep; the finest level's features ``(N, C, F', T')``, before the head."""
        *parts, x = feats
        if self.film is not None:
            x = self.film[0](x, queries)
        for i, (upsample, block) in enumerate(zip(self.upsample, self.up)):
            x = block(upsample(x), parts[i])
            if self.film is not None:
                x = self.film[i + 1](x, queries)
        return x

    def forward(self, log_mag: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        b, k = queries.shape[:2]
        f, t = log_mag.shape[-2:]
        feats = self.encode(log_mag)
        if self.film is not None:  # run only the conditioned decoder per query, queries batched
            feats[-1] = feats[-1].repeat_interleave(k, dim=0)
            x = self.decode(feats, queries.reshape(b * k, -1))
            logits = self.head(x).unflatten(0, (b, k))[:, :, 0]
        else:  # late: one unconditioned pass, then a per-query weighted sum of feature maps
            logits = self._late_logits(self.decode(feats, None), self.query_to_weights(queries))
        return torch.sigmoid(logits[..., :f, :t])

    def _late_logits(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``(B, K, F', T')``: for each query, the weighted sum of the head's ``late_channels``
        maps of the features ``x (B, C, F', T')``, weights and bias ``w (B, K, late_channels +
        1)``. The head is a 1x1 convolution, so the weights fold into it: the same function,
        without computing (and differentiating) the maps at full resolution."""
        b, c, height, width = x.shape
        weight = w[..., :-1] @ self.head.weight.flatten(1)  # (B, K, C)
        bias = w[..., :-1] @ self.head.bias + w[..., -1]  # (B, K)
        pixels = x.permute(0, 2, 3, 1).reshape(b, height * width, c)  # a view when channels-last
        logits = torch.bmm(pixels, weight.transpose(1, 2)) + bias[:, None]  # (B, F'T', K)
        return logits.unflatten(1, (height, width)).permute(0, 3, 1, 2)
