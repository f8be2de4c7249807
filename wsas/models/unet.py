"""A text-conditioned U-Net that predicts one sigmoid mask per query on the log-magnitude STFT.

Three conditionings share the same encoder:

* ``deep``: the query embedding modulates every decoder level and the bottleneck with FiLM
  (``h <- gamma(q) * h + beta(q)``), so the text enters the inner levels of the network.
* ``late``: the decoder is unconditioned and ends in ``late_channels`` feature maps; the query
  embedding is mapped to one weight per map and the mask is their weighted sum (the Sound of
  Pixels / CLIPSep synthesizer).
* ``cross``: at the ``attn_levels`` innermost levels (the bottleneck, then the coarsest decoder
  levels) the spectrogram features attend to the query's token states (the CLAP text tower's
  token-level output, padding masked) with multi-head attention and a residual (the paper).
  A cross query is ``(L, D + 1)``: ``L`` token states of width ``D = cond_dim`` with a last
  channel that is 1 for a real token and 0 for padding; a plain ``(D,)`` vector (an
  unconditional model's slot) is a one-token query.

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

CONDITIONINGS = ("deep", "late", "cross")


@dataclass
class UNetConfig:
    n_fft: int = 510
    hop: int = 128
    channels: int = 8  # first level; doubles per level up to 8x
    levels: int = 4  # downsamplings (the paper: 7)
    convs_per_block: int = 2  # of the encoder
    decoder_convs: int = 2  # per decoder block: 1 makes the per-query part of deep ~half as costly
    cond_dim: int = 128  # query embedding width (cross: the token-state width)
    conditioning: str = "deep"  # or "late" or "cross"
    late_channels: int = 32
    heads: int = 4  # cross: attention heads (divide the inner levels' channels)
    attn_levels: int = 2  # cross: the bottleneck and the coarsest attn_levels - 1 decoder levels
    max_tokens: int = 32  # cross: token states per query (longer texts are cut)

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


class CrossAttention(nn.Module):
    """Features ``h (N, C, F, T)`` attend to token states ``tokens (N, L, D + 1)`` (last channel:
    1 for a real token, 0 for padding, which no position attends to): ``h + attn(LN(h),
    LN(tokens))``, the output projection zero-initialised so training starts unconditioned."""

    def __init__(self, token_dim: int, channels: int, heads: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f"{heads} attention heads do not divide {channels} channels")
        self.norm_h, self.norm_t = nn.LayerNorm(channels), nn.LayerNorm(token_dim)
        self.attn = nn.MultiheadAttention(
            channels, heads, kdim=token_dim, vdim=token_dim, batch_first=True
        )
        nn.init.zeros_(self.attn.out_proj.weight)
        nn.init.zeros_(self.attn.out_proj.bias)

    def forward(self, h: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        n, c, f, t = h.shape
        x = self.norm_h(h.flatten(2).transpose(1, 2))  # (N, F * T, C)
        kv = self.norm_t(tokens[..., :-1])
        out, _ = self.attn(x, kv, kv, key_padding_mask=tokens[..., -1] < 0.5, need_weights=False)
        return h + out.transpose(1, 2).reshape(n, c, f, t)


def token_queries(queries: torch.Tensor) -> torch.Tensor:
    """Cross queries ``(B, K, L, D + 1)`` without the trailing positions that are padding in
    every query (the same function, cheaper: texts are shorter than ``max_tokens``), or pooled
    ``(B, K, D)`` vectors as one-token queries ``(B, K, 1, D + 1)``."""
    if queries.dim() == 4:
        used = (queries[..., -1] > 0.5).flatten(0, 1).any(0).nonzero()
        return queries[:, :, : int(used.max()) + 1] if len(used) else queries
    return torch.cat([queries, torch.ones_like(queries[..., :1])], dim=-1).unsqueeze(2)


class ConditionalUNet(nn.Module):
    """``forward(log_mag (B, F, T), queries (B, K, D)) -> masks (B, K, F, T)`` in [0, 1]
    (cross: queries ``(B, K, L, D + 1)`` too, see the module docstring)."""

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
        if c.conditioning not in CONDITIONINGS:
            raise ValueError(f"conditioning must be one of {CONDITIONINGS}, not {c.conditioning!r}")
        deep = c.conditioning != "late"  # conditioned inside, per query
        inner = [widths[-1], *reversed(widths[:-1])]  # bottleneck, then decoder levels
        self.film = self.cross = None
        if c.conditioning == "deep":
            self.film = nn.ModuleList([FiLM(c.cond_dim, w) for w in inner])
        elif c.conditioning == "cross":
            self.cross = nn.ModuleList(
                [CrossAttention(c.cond_dim, w, c.heads) for w in inner[: c.attn_levels]]
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
        deep, ``queries (N, L, D + 1)`` are attended to when cross; the finest level's features
        ``(N, C, F', T')``, before the head."""
        *parts, x = feats
        cond = self.film or self.cross or []
        if cond:
            x = cond[0](x, queries)
        for i, (upsample, block) in enumerate(zip(self.upsample, self.up)):
            x = block(upsample(x), parts[i])
            if i + 1 < len(cond):
                x = cond[i + 1](x, queries)
        return x

    def forward(self, log_mag: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        b, k = queries.shape[:2]
        f, t = log_mag.shape[-2:]
        feats = self.encode(log_mag)
        if self.config.conditioning != "late":  # the conditioned decoder per query, batched
            feats[-1] = feats[-1].repeat_interleave(k, dim=0)
            if self.cross is not None:
                queries = token_queries(queries)
            x = self.decode(feats, queries.flatten(0, 1))
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
