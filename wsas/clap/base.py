"""The CLAP protocol every backend follows, and the one text-embedding cache."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn


class TextCache:
    """``cache(texts) -> (len(texts), D)``: ``encode`` run once per distinct string, then reused.

    Captions and prompts repeat across training steps, so their embeddings are computed once.
    """

    def __init__(self, encode: Callable[[list[str]], torch.Tensor]):
        self.encode, self.store = encode, {}

    def __call__(self, texts: list[str]) -> torch.Tensor:
        new = [t for t in dict.fromkeys(texts) if t not in self.store]
        if new:
            self.store.update(zip(new, self.encode(new)))
        return torch.stack([self.store[t] for t in texts])


class Clap(nn.Module):
    """A frozen text-audio embedding model.

    ``embed_text(texts) -> (B, D)`` and ``embed_audio(wave (B, S), sr) -> (B, D)`` return
    L2-normalised embeddings; ``embed_audio`` is differentiable w.r.t. ``wave`` (the weak loss
    back-propagates through it into the separator) while the CLAP weights never get gradients.

    A backend declares its registry name (``backend``) and whether its weights travel inside a
    separator's run bundle (``weights_travel``: small models do, so a bundle is self-contained;
    large pretrained ones are referenced by their ``checkpoint`` path instead).
    """

    backend: str
    weights_travel: bool
    sample_rate: int  # Hz of the audio tower
    embed_dim: int
    checkpoint: str | None = None  # the file it was loaded from
    # embed_audio keeps its front end in float32 under autocast (verified for the backend), so
    # training may run its tower in bf16 on a CPU with bf16 instructions (TrainConfig.critic_bf16)
    bf16_audio: bool = False

    @classmethod
    def load(cls, checkpoint: str | os.PathLike | None, device: str | torch.device = "cpu") -> Clap:
        """The backend's model from its own checkpoint file."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, config: dict, tensors: dict[str, torch.Tensor]) -> Clap:
        """Rebuild from ``config`` and ``state_dict`` tensors (backends whose weights travel)."""
        raise NotImplementedError

    def embed_text(self, texts: list[str]) -> torch.Tensor:
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


def cached_text_embedder(clap: Clap) -> TextCache:
    """``embed(texts) -> (len(texts), D)``: frozen text embeddings, computed once per string, in
    full precision even when first asked for inside a bf16 autocast region (training steps), so
    the cache holds the same numbers whichever pass asked first."""

    @torch.no_grad()
    def encode(texts: list[str]) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            return clap.embed_text(texts)

    return TextCache(encode)
