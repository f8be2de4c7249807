"""The CLAP protocol every backend follows, and the factory that loads one."""

from __future__ import annotations

import torch
from torch import nn

from wsas.errors import WsasError


class Clap(nn.Module):
    """A frozen text-audio embedding model.

    ``embed_text(texts) -> (B, D)`` and ``embed_audio(wave (B, S), sr) -> (B, D)`` return
    L2-normalised embeddings; ``embed_audio`` is differentiable w.r.t. ``wave`` (the weak loss
    back-propagates through it into the separator) while the CLAP weights never get gradients.
    ``text_tokens(texts) -> (B, L, Dt), mask (B, L)`` gives token states for deep conditioning.
    """

    sample_rate: int
    embed_dim: int
    text_dim: int  # width of text_tokens

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def text_tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def embed_audio(self, wave: torch.Tensor, sr: int) -> torch.Tensor:
        raise NotImplementedError

    @property
    def logit_scale(self) -> torch.Tensor:
        raise NotImplementedError

    def similarity(self, wave: torch.Tensor, sr: int, texts: list[str]) -> torch.Tensor:
        """Cosine similarities ``(B_audio, B_text)`` between clips and texts."""
        return self.embed_audio(wave, sr) @ self.embed_text(texts).T

    def freeze(self) -> Clap:
        """Eval mode and no gradients into the weights (inputs can still carry gradients)."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self


def cached_text_embedder(clap: Clap):
    """``embed(texts) -> (len(texts), D)``: frozen text embeddings, computed once per distinct string."""
    cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def embed(texts: list[str]) -> torch.Tensor:
        new = [t for t in dict.fromkeys(texts) if t not in cache]
        if new:
            cache.update(zip(new, clap.embed_text(new)))
        return torch.stack([cache[t] for t in texts])

    return embed


def load_clap(
    backend: str = "tiny", checkpoint: str | None = None, device: str | torch.device = "cpu"
) -> Clap:
    """Load a frozen CLAP: ``tiny`` from a ``wsas clap pretrain`` checkpoint, or ``laion``."""
    if backend == "tiny":
        from wsas.clap.tiny import TinyClap

        if checkpoint is None:
            raise WsasError(
                "the tiny CLAP needs a checkpoint: run `wsas clap pretrain --data DIR --out CKPT` first"
            )
        return TinyClap.load(checkpoint, device=device).freeze()
    if backend == "laion":
        from wsas.clap.laion import LaionClap

        return LaionClap(checkpoint, device=device).freeze()
    raise WsasError(f"unknown CLAP backend '{backend}' (choose tiny or laion)")
