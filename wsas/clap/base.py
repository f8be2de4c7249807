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
    L2-normalised embeddings; ``embed_text_tokens(texts) -> states (B, L, token_dim), mask (B,
    L)`` the text tower's token states (True: a real token, False: padding), which
    cross-attention conditioning attends to. ``embed_audio`` is differentiable w.r.t. ``wave``
    (the weak loss back-propagates through it into the separator) while the CLAP weights never
    get gradients.

    A backend declares its registry name (``backend``) and whether its weights travel inside a
    separator's run bundle (``weights_travel``: small models do, so a bundle is self-contained;
    large pretrained ones are referenced by their ``checkpoint`` path instead).
    """

    backend: str
    weights_travel: bool
    sample_rate: int  # Hz of the audio tower
    embed_dim: int
    token_dim: int  # width of embed_text_tokens' states
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

    def embed_text_tokens(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
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


def pad_tokens(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token states of different lengths ``[(L_i, D)]`` -> ``(N, max L_i, D)`` zero-padded and
    their mask ``(N, max L_i)`` (True: a real token)."""
    longest = max(len(s) for s in states)
    out = states[0].new_zeros(len(states), longest, states[0].shape[-1])
    mask = torch.zeros(len(states), longest, dtype=torch.bool, device=out.device)
    for i, s in enumerate(states):
        out[i, : len(s)], mask[i, : len(s)] = s, True
    return out, mask


def _full_precision(fn: Callable[[list[str]], torch.Tensor]) -> Callable[[list[str]], torch.Tensor]:
    """``fn`` without gradients and outside any autocast region."""

    @torch.no_grad()
    def encode(texts: list[str]) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            return fn(texts)

    return encode


def cached_text_embedder(clap: Clap) -> TextCache:
    """``embed(texts) -> (len(texts), D)``: frozen text embeddings, computed once per string, in
    full precision even when first asked for inside a bf16 autocast region (training steps), so
    the cache holds the same numbers whichever pass asked first."""
    return TextCache(_full_precision(clap.embed_text))


def cached_token_embedder(clap: Clap, max_tokens: int) -> TextCache:
    """``embed(texts) -> (len(texts), max_tokens, token_dim + 1)``: frozen token states (the
    first ``max_tokens``, zero-padded) with a last channel that is 1 for a real token and 0 for
    padding (the U-Net's cross queries), cached per string like :func:`cached_text_embedder`."""

    def encode(texts: list[str]) -> torch.Tensor:
        states, mask = clap.embed_text_tokens(texts)
        states, mask = states[:, :max_tokens], mask[:, :max_tokens]
        packed = torch.cat([states.float() * mask[..., None], mask[..., None].float()], dim=-1)
        return torch.nn.functional.pad(packed, (0, 0, 0, max_tokens - packed.shape[1]))

    return TextCache(_full_precision(encode))


def query_embedder(clap: Clap, conditioning: str, max_tokens: int) -> TextCache:
    """``embed(texts)``: the queries a separator of ``conditioning`` takes for ``texts``, ``(N,
    embed_dim)`` pooled embeddings, or for ``cross`` ``(N, max_tokens, token_dim + 1)`` token
    states (:func:`cached_token_embedder`)."""
    if conditioning == "cross":
        return cached_token_embedder(clap, max_tokens)
    return cached_text_embedder(clap)


def query_dim(clap: Clap, conditioning: str) -> int:
    """The ``UNetConfig.cond_dim`` of a separator of ``conditioning`` queried through ``clap``."""
    return clap.token_dim if conditioning == "cross" else clap.embed_dim
