"""The training regimes of the paper: what each one sees, and the loss it minimises.

* ``supervised``: clean sources + labels -> reconstruction of each source queried by its label.
* ``mix-and-separate``: two captioned mixtures -> each recovered from their sum by its caption.
* ``pit``: clean sources, unconditional output slots -> permutation-invariant SI-SDR.
* ``mixit``: two mixtures, 2N unconditional slots -> mixture-invariant reconstruction.
* ``weak``: two captioned mixtures + frozen CLAP -> the bi-modal objective (mixture +
  consistency reconstruction + CLAP similarity of clause-level estimates to their clauses).
* ``semi``: a clean fraction (supervised) + mixtures (weak): ``lambda_s L_sup + lambda_u L_weak``.

A regime's loss reads what it needs from a :class:`Context` (the trainer). Adding a regime is
one loss function and one :class:`Regime` entry in ``REGIMES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from wsas import losses
from wsas.audio import loudest_window
from wsas.captions import slots
from wsas.clap.base import Clap
from wsas.data.datasets import ClipSet
from wsas.data.mixing import CaptionedBatch, MixtureBatch
from wsas.errors import WsasError
from wsas.models.queries import Embed, label_queries
from wsas.models.separator import MaskSeparator
from wsas.presets import TrainConfig

Losses = dict[str, torch.Tensor]  # "total" and its named parts, each a scalar


class Context(Protocol):
    """What a regime's loss reads from the trainer."""

    cfg: TrainConfig
    model: MaskSeparator
    clap: Clap
    embed: Embed  # texts -> pooled CLAP text embeddings (the critic's targets)
    query: Embed  # texts -> the separator's queries (pooled, or cross's token states)
    rng: np.random.Generator
    device: torch.device
    clean: ClipSet | None  # the clean training clips (regimes that need them)

    def mixture_batch(
        self, groups: int, batch: int | None = None
    ) -> MixtureBatch | CaptionedBatch: ...

    def clean_batch(self, batch: int | None = None) -> MixtureBatch: ...

    def clauses(self, caption: str) -> list[str]: ...

    def slots(self, batch: int) -> torch.Tensor: ...

    def critic_autocast(self) -> torch.autocast: ...


def _magnitudes(
    ctx: Context, spec: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``|spec| (B, F, T)`` and the magnitudes of the target waveforms ``(B, K, S) -> (B, K, F,
    T)``, both divided by each example's mean mixture magnitude with ``normalise_levels`` (the
    loss weights then mean the same at any input level), as they are otherwise (the paper)."""
    mag_mix, mags = spec.abs(), ctx.model.spectrogram(targets).abs()
    if ctx.cfg.normalise_levels:
        level = mag_mix.mean((-2, -1), keepdim=True).clamp_min(1e-8)
        mag_mix, mags = mag_mix / level, mags / level.unsqueeze(1)
    return mag_mix, mags


def _reconstruction(
    ctx: Context, masks: torch.Tensor, spec: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """How far the masked mixture ``masks (B, K, F, T) * spec (B, F, T)`` is from the target
    waveforms ``(B, K, S)``: the paper's weighted L1 on magnitudes (``recon_loss="magnitude"``)
    or minus the thresholded SNR of the waveforms (``"snr"``: the mixture's phase, through the
    iSTFT: what SDR measures; ``wsas bench --convergence`` compares the two)."""
    if ctx.cfg.recon_loss == "snr":
        waves = ctx.model.to_waves(masks, spec, targets.shape[-1])
        return -losses.snr(waves, targets).mean()
    return losses.reconstruction_loss(masks, *_magnitudes(ctx, spec, targets))


def supervised_loss(ctx: Context, size: int | None = None) -> Losses:
    """Each clean source queried by its label prompt, reconstructed (``_reconstruction``)."""
    clips = ctx.clean
    batch = ctx.clean_batch(size)
    sources = batch.sources[:, 0].to(ctx.device)
    queries = label_queries(ctx.query, clips.prompts, batch.labels[:, 0]).to(ctx.device)
    masks, spec = ctx.model.masks(batch.mixtures[:, 0].to(ctx.device), queries)
    return {"total": _reconstruction(ctx, masks, spec, sources)}


def mix_and_separate_loss(ctx: Context) -> Losses:
    """Two captioned mixtures summed; each recovered by its whole caption (CLIPSep-style)."""
    batch = ctx.mixture_batch(groups=2)
    mixtures = batch.mixtures.to(ctx.device)
    captions = [c for caps in batch.captions for c in caps]
    queries = ctx.query(captions).unflatten(0, (len(mixtures), 2))
    masks, spec = ctx.model.masks(mixtures.sum(1), queries)
    return {"total": _reconstruction(ctx, masks, spec, mixtures)}


def pit_loss(ctx: Context) -> Losses:
    """Unconditional slots, best permutation of SI-SDR on waveforms (magnitude-L1 PIT stayed at
    the equal-split solution, measured)."""
    batch = ctx.mixture_batch(groups=1)
    mixtures = batch.mixtures.to(ctx.device)
    masks, spec = ctx.model.masks(mixtures.sum(1), ctx.slots(len(mixtures)))
    estimates = ctx.model.to_waves(masks, spec, mixtures.shape[-1])
    loss, _ = losses.pit(estimates, batch.sources[:, 0].to(ctx.device), losses.negative_si_sdr)
    return {"total": loss}


def mixit_loss(ctx: Context) -> Losses:
    """2N unconditional slots; the best partition of them must rebuild the two mixtures."""
    batch = ctx.mixture_batch(groups=2)
    mixtures = batch.mixtures.to(ctx.device)
    masks, spec = ctx.model.masks(mixtures.sum(1), ctx.slots(len(mixtures)))
    mag_mix, mags = _magnitudes(ctx, spec, mixtures)
    pairwise = losses.magnitude_l1(losses.spectral_weight(mag_mix)[:, None, None])
    loss, _ = losses.mixit(masks * mag_mix.unsqueeze(1), mags, pairwise)
    return {"total": loss}


def weak_loss(ctx: Context, size: int | None = None) -> Losses:
    """The bi-modal weakly supervised objective on two captioned mixtures (see losses.weak_loss)."""
    batch = ctx.mixture_batch(groups=2, batch=size)
    mixtures = batch.mixtures.to(ctx.device)  # (B, 2, S)
    b, k = len(mixtures), ctx.cfg.sources
    clause_slots = [[slots(ctx.clauses(c), k, ctx.rng) for c in caps] for caps in batch.captions]
    texts = [c for row in clause_slots for clauses, _ in row for c in clauses]  # (B * 2 * K)
    alpha = torch.tensor([[a for _, a in row] for row in clause_slots], device=ctx.device)
    text_emb = ctx.embed(texts).reshape(b, 2 * k, -1)  # the clauses' CLAP text targets
    clause_q = ctx.query(texts).unflatten(0, (b, 2 * k))  # the same as text_emb unless cross
    captions = ctx.query([c for caps in batch.captions for c in caps]).unflatten(0, (b, 2))
    masks, spec = ctx.model.masks(mixtures.sum(1), torch.cat([captions, clause_q], dim=1))
    audio_emb = None  # sim_weight 0 (the CLAP-term ablation): no clause audio is heard
    if ctx.cfg.sim_weight != 0:
        clause_waves = ctx.model.to_waves(masks[:, 2:], spec, mixtures.shape[-1])  # (B, 2K, S)
        window = ctx.cfg.clap_window(ctx.model.sample_rate)  # None: the critic hears it all
        if window is not None:
            clause_waves = loudest_window(clause_waves, window)
        with ctx.critic_autocast():
            audio_emb = ctx.clap.embed_audio(clause_waves.flatten(0, 1), ctx.model.sample_rate)
        audio_emb = audio_emb.reshape(b, 2 * k, -1)
    names = np.array(texts, dtype=object).reshape(b, 2 * k)
    same = torch.from_numpy(names[:, :, None] == names[:, None, :]).to(ctx.device)
    return losses.weak_loss(
        masks[:, :2],
        masks[:, 2:].reshape(b, 2, k, *masks.shape[-2:]),
        alpha,
        *_magnitudes(ctx, spec, mixtures),
        audio_emb,
        text_emb,
        ctx.clap.logit_scale,
        same,
        ctx.cfg.sim_weight,
        ctx.cfg.recon_weight,
        ctx.cfg.clause_level,
        ctx.cfg.clause_level_weight,
        ctx.cfg.clause_floor_db,
    )


def semi_loss(ctx: Context) -> Losses:
    """Weak objective on mixtures of the unlabelled clips plus the supervised loss on the clean
    fraction, half of the batch each (one objective, the same examples per step as the others)."""
    half = ctx.cfg.batch_size // 2
    weak = weak_loss(ctx, half)
    sup = supervised_loss(ctx, ctx.cfg.batch_size - half)["total"]
    total = ctx.cfg.lambda_s * sup + ctx.cfg.lambda_u * weak["total"]
    terms = {f"weak_{k}": v for k, v in weak.items() if k != "total"}  # the weak half's parts
    return {"supervised": sup, "weak": weak["total"], **terms, "total": total}


@dataclass(frozen=True)
class Regime:
    """A training regime: its loss and what it needs and produces."""

    name: str
    loss: Callable[[Context], Losses]
    needs_clean: bool  # trains on clean sources (cannot train on captioned recordings)
    unconditional: bool = False  # output slots instead of text queries
    slots_per_source: int = 1  # output slots per source of a training mixture
    assignment: str | None = None  # how unconditional outputs meet references at evaluation
    mixes_rest: bool = False  # mixtures come only from the clips outside the clean subset
    recon_losses: tuple[str, ...] = ("magnitude",)  # the TrainConfig.recon_loss it can train with

    def n_slots(self, sources: int) -> int:
        """Output slots of a model trained on ``sources``-source mixtures."""
        return sources * self.slots_per_source


BOTH = ("magnitude", "snr")
REGIMES: dict[str, Regime] = {
    r.name: r
    for r in (
        Regime("supervised", supervised_loss, needs_clean=True, recon_losses=BOTH),
        Regime("mix-and-separate", mix_and_separate_loss, needs_clean=False, recon_losses=BOTH),
        Regime("pit", pit_loss, True, unconditional=True, assignment="oracle permutation"),
        Regime("mixit", mixit_loss, False, True, slots_per_source=2, assignment="oracle selection"),
        Regime("weak", weak_loss, needs_clean=False),
        Regime("semi", semi_loss, needs_clean=True, mixes_rest=True, recon_losses=BOTH),
    )
}


def get_regime(name: str) -> Regime:
    """The regime called ``name``; unknown names raise a one-line WsasError."""
    if name not in REGIMES:
        raise WsasError(f"unknown mode '{name}'; choose one of {', '.join(REGIMES)}")
    return REGIMES[name]
