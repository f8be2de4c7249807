"""Queries a separator is asked with: label prompts, fixed slot vectors, and test-pair inference.

A text-conditioned model is queried with text embeddings; an unconditional one (PIT, MixIT) has
output *slots* instead, named by fixed orthonormal vectors so both kinds share one network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from wsas.data.mixing import MixtureBatch
from wsas.losses import best_permutation
from wsas.models.separator import MaskSeparator

# texts -> (len(texts), D) frozen embeddings, or (len(texts), L, D + 1) cross queries
Embed = Callable[[list[str]], torch.Tensor]


def slot_queries(n: int, dim: int) -> torch.Tensor:
    """Fixed orthonormal query vectors ``(n, dim)`` that name the output slots of unconditional
    models (the same vectors in every process and run)."""
    generator = torch.Generator().manual_seed(1234)
    q, _ = torch.linalg.qr(torch.randn(dim, n, generator=generator))
    return q.T.contiguous()


def label_queries(embed: Embed, prompts: Sequence[str], labels: torch.Tensor) -> torch.Tensor:
    """Label-prompt queries ``(B, N, *Q)`` (``Q``: one query's shape, ``(D,)`` or cross's
    ``(L, D + 1)``) for class indices ``labels (B, N)`` into ``prompts``."""
    return embed([prompts[int(c)] for c in labels.flatten()]).unflatten(0, labels.shape)


@torch.no_grad()
def separate_pairs(
    model: MaskSeparator,
    embed: Embed,
    pairs: MixtureBatch,
    prompts: Sequence[str],
    n_slots: int = 0,
    batch: int = 16,
) -> torch.Tensor:
    """Estimates ``(P, 2, S)`` aligned with ``pairs.sources[:, 0]``.

    Conditioned models get the two label prompts; unconditional ones (``n_slots > 0``) get their
    slot queries, and the outputs that best match the references are selected (an oracle).
    """
    device = next(model.parameters()).device
    mixtures, refs, labels = pairs.mixtures[:, 0], pairs.sources[:, 0], pairs.labels[:, 0]
    out = []
    for start in range(0, len(mixtures), batch):
        mix = mixtures[start : start + batch].to(device)
        if n_slots:
            queries = slot_queries(n_slots, model.config.cond_dim).to(device)
            queries = queries.expand(len(mix), -1, -1)
        else:
            queries = label_queries(embed, prompts, labels[start : start + batch]).to(device)
        est = model(mix, queries).float().cpu()
        if n_slots:
            est = best_permutation(est, refs[start : start + batch])
        out.append(est)
    return torch.cat(out)
