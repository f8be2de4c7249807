"""Separation losses as small composable pieces (shapes in each docstring).

Magnitude spectrograms are ``(..., F, T)``; masks are in [0, 1] and an estimate is
``mask * |M|`` for the mixture (of mixtures) ``M``. The assignment losses (PIT over
permutations, MixIT over partitions) wrap any pairwise loss instead of re-writing it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from wsas.metrics import si_sdr  # the metric is also a loss (and PIT's assignment score)

Pairwise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def spectral_weight(mag_mix: torch.Tensor) -> torch.Tensor:
    """Per-bin weights ``clamp(log1p(|M|), 1e-3, 10)`` that favour loud time-frequency bins, same
    shape."""
    return torch.log1p(mag_mix).clamp(1e-3, 10)


def weighted_l1(estimate: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted L1 per item: ``(..., F, T)`` x3 -> ``(...)`` (mean over F, T)."""
    return (weight * (estimate - target).abs()).mean(dim=(-2, -1))


def reconstruction_loss(
    masks: torch.Tensor, mag_mix: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Masked-mixture L1 to target magnitudes: ``masks (B, K, F, T)``, ``mag_mix (B, F, T)``,
    ``targets (B, K, F, T)``.

    The *supervised* loss when targets are the clean sources queried by their labels, and the
    *mix-and-separate* loss (Sound of Pixels, CLIPSep) when ``mag_mix`` is the mixture of
    mixtures and targets are the mixtures queried by their whole captions. A perfect mask
    gives zero.
    """
    weight = spectral_weight(mag_mix).unsqueeze(1)
    return weighted_l1(masks * mag_mix.unsqueeze(1), targets, weight).mean()


def pit(
    estimates: torch.Tensor, targets: torch.Tensor, pairwise: Pairwise
) -> tuple[torch.Tensor, torch.Tensor]:
    """Permutation-invariant loss: ``estimates, targets (B, N, ...)`` -> (mean loss, best
    permutation ``(B, N)``).

    ``pairwise(est (B, N, 1, ...), tgt (B, 1, N, ...)) -> (B, N, N)``; every permutation of the
    N outputs is tried (Yu et al., 2017), which is fine for the handful of sources used here.
    """
    n = estimates.shape[1]
    cost = pairwise(estimates.unsqueeze(2), targets.unsqueeze(1))  # (B, N_est, N_tgt)
    perms = torch.tensor(list(itertools.permutations(range(n))), device=cost.device)  # (P, N)
    per_perm = cost[:, perms, torch.arange(n, device=cost.device)].mean(-1)  # (B, P)
    best = per_perm.argmin(-1)
    return per_perm.gather(1, best[:, None]).mean(), perms[best]


def mixit(
    estimates: torch.Tensor, mixtures: torch.Tensor, pairwise: Pairwise
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixture-invariant loss (Wisdom et al., 2020): ``estimates (B, M, ...)``, ``mixtures (B, G,
    ...)``.

    Every assignment of the M outputs to the G mixtures is tried; the outputs assigned to a
    mixture are summed and compared with it. Returns (mean loss, best assignment ``(B, M)``).
    ``pairwise(sum_est (B, A, G, ...), mixtures (B, 1, G, ...)) -> (B, A, G)``.
    """
    m, g = estimates.shape[1], mixtures.shape[1]
    assign = torch.tensor(
        list(itertools.product(range(g), repeat=m)), device=estimates.device
    )  # (A, M)
    onehot = F.one_hot(assign, g).float()  # (A, M, G)
    with torch.autocast(estimates.device.type, enabled=False):  # sums that pick the assignment
        sums = torch.einsum("amg,bm...->bag...", onehot, estimates.float())  # (B, A, G, ...)
    per_assign = pairwise(sums, mixtures.unsqueeze(1)).mean(-1)  # (B, A)
    best = per_assign.argmin(-1)
    return per_assign.gather(1, best[:, None]).mean(), assign[best]


def magnitude_l1(weight: torch.Tensor) -> Pairwise:
    """A pairwise weighted-L1 on magnitudes ``(..., F, T)`` for :func:`pit` / :func:`mixit`."""
    return lambda est, tgt: weighted_l1(est, tgt, weight)


def negative_si_sdr(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """A pairwise loss on waveforms ``(..., S)`` for :func:`pit`: minus SI-SDR in dB."""
    return -si_sdr(estimate, reference)


def clap_similarity_loss(
    audio_emb: torch.Tensor,
    text_emb: torch.Tensor,
    scale: torch.Tensor,
    same_text: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bi-modal semantic similarity: cross-entropy over the clause/estimate similarity matrix.

    ``audio_emb (B, K, D)`` are CLAP embeddings of the K clause-level estimates, ``text_emb
    (B, K, D)`` of their clauses; row k must score its own clause above the others. Where two
    slots hold the same clause (``same_text (B, K, K)`` True off the diagonal, from padding),
    the duplicate is not counted as a negative.
    """
    with torch.autocast(audio_emb.device.type, enabled=False):  # logits up to 100: not in bf16
        logits = scale * audio_emb.float() @ text_emb.float().transpose(1, 2)  # (B, K, K)
    if same_text is not None:
        eye = torch.eye(logits.shape[-1], dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(same_text & ~eye, float("-inf"))
    target = torch.arange(logits.shape[-1], device=logits.device).expand(logits.shape[:-1])
    return F.cross_entropy(logits.flatten(0, 1), target.flatten())


def consistency_loss(
    clause_masks: torch.Tensor,
    alpha: torch.Tensor,
    mag_mix: torch.Tensor,
    mag_targets: torch.Tensor,
) -> torch.Tensor:
    """Clause estimates must add back up to their mixture.

    ``clause_masks (B, G, K, F, T)`` for the K clause slots of each of the G mixtures, ``alpha
    (B, G, K)`` the slot weights (1/copies for padded duplicates), ``mag_mix (B, F, T)`` the
    mixture of mixtures, ``mag_targets (B, G, F, T)`` the mixtures: ``sum_k alpha_k m_k |M| ~
    |X_g|``.
    """
    combined = (alpha[..., None, None] * clause_masks).sum(2)  # (B, G, F, T)
    return reconstruction_loss(combined, mag_mix, mag_targets)


def _ratio_db(energy: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``energy`` over ``reference`` in dB, finite (and differentiable) where either is zero."""
    return 10 * torch.log10((energy + 1e-12) / (reference + 1e-12))


def floor_shortfall(
    clause_mags: torch.Tensor, alpha: torch.Tensor, mixture_mags: torch.Tensor, floor_db: float
) -> torch.Tensor:
    """How far (dB) clause estimates fall below ``floor_db`` of their own mixture's energy (zero for
    an estimate at or above it), averaged with the slot weights ``alpha (B, G, K)`` so that a
    padded clause counts once: ``clause_mags (B, G, K, F, T)``, ``mixture_mags (B, G, F, T)``.

    A caption names sounds one can hear, so each clause estimate should keep an audible share of
    its mixture. The CLAP critic cannot hear level (TinyCLAP removes the mean log-mel), and the
    consistency term only constrains the clauses' sum. A source quieter than the floor in its
    mixture (training gains span +-5 dB per source) is pulled up by leaking the others into it.
    """
    with torch.autocast(clause_mags.device.type, enabled=False):
        clause = clause_mags.float().pow(2).sum((-2, -1))  # (B, G, K)
        mixture = mixture_mags.float().pow(2).sum((-2, -1)).unsqueeze(-1)  # (B, G, 1)
        weight = alpha.float()
        return (weight * F.relu(floor_db - _ratio_db(clause, mixture))).sum() / weight.sum()


def energy_balance(
    clause_mags: torch.Tensor, alpha: torch.Tensor, mixture_mags: torch.Tensor
) -> torch.Tensor:
    """How far (|dB|) the clause estimates' energies fall from adding up to their mixture's,
    averaged: ``clause_mags (B, G, K, F, T)``, ``alpha (B, G, K)`` the slot weights,
    ``mixture_mags (B, G, F, T)``.

    Independent sources' energies add up to their mixture's. Estimates that share the same bins
    fall short of it while their magnitudes still add up to the mixture's, which is all the
    consistency term (an L1 on the magnitudes' sum) asks.
    """
    with torch.autocast(clause_mags.device.type, enabled=False):
        clause = (alpha.float() * clause_mags.float().pow(2).sum((-2, -1))).sum(-1)  # (B, G)
        mixture = mixture_mags.float().pow(2).sum((-2, -1))
        return _ratio_db(clause, mixture).abs().mean()


def weak_loss(
    mixture_masks: torch.Tensor,
    clause_masks: torch.Tensor,
    alpha: torch.Tensor,
    mag_mix: torch.Tensor,
    mag_mixtures: torch.Tensor,
    audio_emb: torch.Tensor | None,
    text_emb: torch.Tensor,
    scale: torch.Tensor,
    same_text: torch.Tensor | None = None,
    sim_weight: float = 0.5,
    recon_weight: float = 5.0,
    clause_level: str | None = None,
    level_weight: float = 1.0,
    floor_db: float = -12.0,
) -> dict[str, torch.Tensor]:
    """The bi-modal weakly supervised objective of Mahmud et al. (ICLR 2024).

    ``L = sim_weight * L_sim + recon_weight * (L_consistency + L_mixture)`` with
    ``mixture_masks (B, G, F, T)`` (each mixture queried by its whole caption), ``clause_masks
    (B, G, K, F, T)``, ``alpha (B, G, K)``, ``mag_mix (B, F, T)``, ``mag_mixtures (B, G, F, T)``,
    and CLAP embeddings ``audio_emb, text_emb (B, G*K, D)`` of all clause estimates / clauses in
    the mixture of mixtures. Returns the total and its parts. ``audio_emb=None`` with
    ``sim_weight=0`` is the ablation without the CLAP term (no similarity part).

    ``clause_level`` adds a magnitude target for the clause estimates (not in the paper), ``+
    level_weight * L_level`` as a part of that name: ``"floor"`` (:func:`floor_shortfall`
    below ``floor_db``) or ``"energy"`` (:func:`energy_balance`).
    """
    if audio_emb is None and sim_weight:
        raise ValueError("the CLAP term needs audio embeddings (audio_emb) when sim_weight != 0")
    parts = {
        "mixture": reconstruction_loss(mixture_masks, mag_mix, mag_mixtures),
        "consistency": consistency_loss(clause_masks, alpha, mag_mix, mag_mixtures),
    }
    total = recon_weight * (parts["consistency"] + parts["mixture"])
    if audio_emb is not None:
        parts["similarity"] = clap_similarity_loss(audio_emb, text_emb, scale, same_text)
        total = total + sim_weight * parts["similarity"]
    if clause_level is not None:
        clause_mags = clause_masks * mag_mix[:, None, None]
        parts[clause_level] = (
            floor_shortfall(clause_mags, alpha, mag_mixtures, floor_db)
            if clause_level == "floor"
            else energy_balance(clause_mags, alpha, mag_mixtures)
        )
        total = total + level_weight * parts[clause_level]
    parts["total"] = total  # last: the log's columns keep their order
    return parts


def snr(
    estimate: torch.Tensor, reference: torch.Tensor, max_db: float = 30.0, eps: float = 1e-8
) -> torch.Tensor:
    """Signal-to-noise ratio in dB, ``(..., S)`` x2 -> ``(...)``, soft-capped at ``max_db``.

    ``10 log10(|r|^2 / (|r - e|^2 + tau |r|^2))`` with ``tau = 10^(-max_db / 10)`` (Wisdom et
    al., 2020): a training loss stops pushing examples already separated beyond ``max_db``. A
    silent reference scores a constant -80 dB (no gradient: it neither trains nor dominates).
    Unlike SI-SDR, a wrong level costs.
    """
    power = reference.pow(2).sum(-1)
    error = (reference - estimate).pow(2).sum(-1)
    return 10 * torch.log10(power / (error + 10 ** (-max_db / 10) * power + eps) + eps)


def best_permutation(outputs: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """The outputs ``(B, M, S)`` (M >= N) assigned to ``refs (B, N, S)`` that maximise mean SI-SDR:
    ``(B, N, S)``. With M > N this also *selects* which outputs count (MixIT's 2N slots)."""
    n, m = refs.shape[1], outputs.shape[1]
    scores = si_sdr(outputs[:, :, None], refs[:, None])  # (B, M, N)
    perms = list(itertools.permutations(range(m), n))
    totals = torch.stack([scores[:, list(p), list(range(n))].sum(-1) for p in perms], dim=-1)
    best = totals.argmax(-1)  # (B,)
    return torch.stack([outputs[b, list(perms[int(i)])] for b, i in enumerate(best)])
