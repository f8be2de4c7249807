"""Frozen CLAP models behind one protocol (:class:`wsas.clap.base.Clap`) and their registry.

Backends: ``tiny`` (offline default, trained here by ``wsas clap pretrain``) and ``laion`` (the
paper's LAION-CLAP, for users who have its checkpoint and text-encoder files). A new backend is
a :class:`Clap` subclass added to ``BACKENDS``.
"""

from __future__ import annotations

import os

import torch

from wsas.clap.base import (
    Clap,
    TextCache,
    cached_text_embedder,
    cached_token_embedder,
    query_dim,
    query_embedder,
)
from wsas.clap.laion import LaionClap
from wsas.clap.tiny import TinyClap
from wsas.errors import WsasError

BACKENDS: dict[str, type[Clap]] = {cls.backend: cls for cls in (TinyClap, LaionClap)}


def clap_class(backend: str) -> type[Clap]:
    """The backend class registered under ``backend``."""
    if backend not in BACKENDS:
        raise WsasError(f"unknown CLAP backend '{backend}' (choose {' or '.join(BACKENDS)})")
    return BACKENDS[backend]


def load_clap(
    backend: str = "tiny",
    checkpoint: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> Clap:
    """A frozen CLAP of ``backend`` loaded from ``checkpoint``."""
    clap = clap_class(backend).load(checkpoint, device=device)
    clap.checkpoint = None if checkpoint is None else str(checkpoint)
    return clap.freeze()


__all__ = [
    "BACKENDS",
    "Clap",
    "TextCache",
    "cached_text_embedder",
    "cached_token_embedder",
    "clap_class",
    "load_clap",
    "query_dim",
    "query_embedder",
]
