"""Evaluation on the fixed 2-source test mixtures (the paper's protocol).

Each source of a test mixture is queried with its label prompt; estimates are scored with BSS
Eval v3 ``bss_eval_sources`` (SDR, SIR, SAR; 512-tap distortion filter, no permutation search
since a query-conditioned output is already assigned to its source), plus SI-SDR and the SDR
improvement over the mixture. Two back-ends give the same numbers: ``fast`` (fast_bss_eval,
torch, default) and ``mir_eval`` (the reference). Unconditional models (PIT, MixIT) have no
queries: their outputs are assigned to references by the best permutation (PIT) or the best
selection of 2 of their 2N outputs (MixIT): an oracle advantage, stated in every table. Bounds on
the same mixtures: the mixture itself, and the oracle ideal
ratio mask (the ceiling of any mask-based separator with the mixture phase).

References are loudness-normalised clips that are active most of the time; a reference with
less than 1e-8 mean energy would make SDR meaningless and is dropped with its pair.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import torch

from wsas.audio import istft, stft
from wsas.bundle import load_run
from wsas.clap import cached_text_embedder
from wsas.data.datasets import load_clips
from wsas.data.mixing import MixtureBatch, fixed_pairs
from wsas.errors import WsasError
from wsas.losses import si_sdr
from wsas.models.queries import separate_pairs
from wsas.regimes import get_regime


@contextlib.contextmanager
def _one_thread():
    """torch's batched float64 ``linalg.solve`` fails in oneMKL (DLASWP, "Pivots given to lu_solve")
    once ``set_num_threads(n > 1)`` has been called; fast_bss_eval solves one small system per
    item, so one thread costs little."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def bss_eval(
    estimates: torch.Tensor, references: torch.Tensor, backend: str = "fast"
) -> dict[str, np.ndarray]:
    """BSS Eval v3 per source: ``(P, N, S)`` x2 -> ``{"sdr", "sir", "sar"}`` each ``(P, N)`` in
    dB."""
    with _one_thread():
        return _bss_eval(estimates, references, backend)


def _bss_eval(
    estimates: torch.Tensor, references: torch.Tensor, backend: str
) -> dict[str, np.ndarray]:
    results = {"sdr": [], "sir": [], "sar": []}
    for est, ref in zip(estimates.double(), references.double()):
        if backend == "fast":
            import fast_bss_eval

            sdr, sir, sar = fast_bss_eval.bss_eval_sources(
                ref, est, compute_permutation=False, filter_length=512
            )
        elif backend == "mir_eval":
            import mir_eval.separation

            sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources(
                ref.numpy(), est.numpy(), compute_permutation=False
            )
        else:
            raise WsasError(f"unknown BSS Eval back-end '{backend}' (fast or mir_eval)")
        for key, value in zip(("sdr", "sir", "sar"), (sdr, sir, sar)):
            results[key].append(np.asarray(value, dtype=np.float64))
    return {k: np.stack(v) for k, v in results.items()}


def oracle_irm(pairs: MixtureBatch, n_fft: int, hop: int) -> torch.Tensor:
    """Ideal ratio mask estimates ``(P, 2, S)``: ``|S_i| / sum_j |S_j|`` applied to the mixture
    STFT."""
    refs, mix = pairs.sources[:, 0], pairs.mixtures[:, 0]
    mags = stft(refs, n_fft, hop).abs()
    masks = mags / mags.sum(1, keepdim=True).clamp_min(1e-8)
    return istft(masks * stft(mix, n_fft, hop).unsqueeze(1), n_fft, hop, mix.shape[-1])


def score(
    estimates: torch.Tensor,
    pairs: MixtureBatch,
    backend: str = "fast",
    class_names: tuple[str, ...] | None = None,
) -> dict:
    """Mean SDR/SIR/SAR/SI-SDR/SDRi over all sources, and mean SDR per class (keyed by
    ``class_names[label]``, or the label index without names)."""
    refs, mix = pairs.sources[:, 0], pairs.mixtures[:, 0]
    keep = (refs.pow(2).mean(-1) > 1e-8).all(-1)
    refs, mix, est, labels = refs[keep], mix[keep], estimates[keep], pairs.labels[:, 0][keep]
    metrics = bss_eval(est, refs, backend)
    baseline = bss_eval(mix[:, None].expand_as(refs), refs, backend)["sdr"]
    per_class = {}
    for name_idx in labels.unique():
        sel = (labels == name_idx).numpy()
        name = class_names[int(name_idx)] if class_names else str(int(name_idx))
        per_class[name] = round(float(metrics["sdr"][sel].mean()), 3)

    def mean(
        x,
    ) -> float | None:  # SAR of the mixture itself is +inf: stored as null (JSON has no inf)
        value = float(np.mean(x))
        return value if np.isfinite(value) else None

    return {
        "pairs": int(keep.sum()),
        "sdr": mean(metrics["sdr"]),
        "sir": mean(metrics["sir"]),
        "sar": mean(metrics["sar"]),
        "si_sdr": float(si_sdr(est, refs).mean()),
        "sdri": float((metrics["sdr"] - baseline).mean()),
        "sdr_per_class": per_class,
    }


def bounds(pairs: MixtureBatch, n_fft: int, hop: int, backend: str = "fast") -> dict:
    """Scores of the mixture itself (lower bound) and of the oracle ideal ratio mask (upper
    bound)."""
    mixture = pairs.mixtures[:, 0][:, None].expand_as(pairs.sources[:, 0])
    return {
        "mixture": score(mixture, pairs, backend),
        "oracle_irm": score(oracle_irm(pairs, n_fft, hop), pairs, backend),
    }


@torch.no_grad()
def clap_score(
    clap, estimates: torch.Tensor, mixtures: torch.Tensor, texts: list[list[str]], sr: int
) -> dict:
    """Reference-free scores of ``estimates (P, K, S)`` from ``mixtures (P, S)`` queried by ``texts
    [P][K]``.

    ``clap_score``: cosine similarity of each estimate to its own text; ``clap_score_mixture``: of
    the mixture to the same text; ``clapscore_improvement``: their difference (how much closer
    separation brought the audio to its description); ``leakage``: mean similarity of an
    estimate to the *other* texts of its mixture (lower is better).
    """
    p, k = estimates.shape[:2]
    audio = torch.cat(
        [clap.embed_audio(chunk, sr) for chunk in estimates.flatten(0, 1).split(64)]
    ).reshape(p, k, -1)
    mix = torch.cat([clap.embed_audio(chunk, sr) for chunk in mixtures.split(64)])  # (P, D)
    text = clap.embed_text([t for row in texts for t in row]).reshape(p, k, -1)
    sims = audio @ text.transpose(1, 2)  # (P, K, K)
    own = sims.diagonal(dim1=1, dim2=2)
    off = ~torch.eye(k, dtype=torch.bool)
    mixture = (text @ mix[:, :, None])[..., 0]  # (P, K)
    return {
        "clap_score": float(own.mean()),
        "clap_score_mixture": float(mixture.mean()),
        "clapscore_improvement": float((own - mixture).mean()),
        "leakage": float(sims[:, off].mean()) if k > 1 else float("nan"),
    }


def reference_free(checkpoint: str | os.PathLike, folder: str | os.PathLike) -> dict:
    """CLAPScore of caption-driven separations of every file in ``FOLDER/captions.csv``
    (columns file, caption)."""
    import csv

    from wsas.audio import load
    from wsas.captions import parse

    folder = Path(folder)
    listing = folder / "captions.csv"
    if not listing.is_file():
        raise WsasError(f"{listing}: missing (a CSV with columns file,caption)")
    run = load_run(checkpoint)
    model, clap, sr = run.model, run.clap, run.config["sample_rate"]
    embed = cached_text_embedder(clap)
    rows = []
    with open(listing, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            wave, _ = load(folder / row["file"], sr=sr)
            clauses = parse(row["caption"])
            est = model(wave[None], embed(clauses)[None]).cpu()
            scores = clap_score(clap, est, wave[None], [clauses], sr)
            rows.append({"file": row["file"], "clauses": clauses, **scores})
    keys = ("clap_score", "clap_score_mixture", "clapscore_improvement")
    return {
        "files": len(rows),
        **{k: float(np.mean([r[k] for r in rows])) for k in keys},
        "per_file": rows,
    }


def evaluate_run(
    run: str | os.PathLike,
    data: str | os.PathLike,
    n_pairs: int,
    backend: str = "fast",
    seed: int = 1234,
    clip_samples: int | None = None,
) -> dict:
    """Score a run on the fixed 2-source test pairs of ``data`` (a corpus folder or a labelled
    layout ``music:DIR`` / ``vggsound:DIR``, cut to ``clip_samples``), each source queried by
    its label prompt; unconditional models get their regime's oracle assignment."""
    bundle = load_run(run)
    config = bundle.config
    clips = load_clips(data, "test", config["sample_rate"], clip_samples)
    pairs = fixed_pairs(clips, n_pairs, seed)
    regime = get_regime(config["train"]["mode"])
    n_slots = config["n_slots"] if regime.unconditional else 0
    embed = cached_text_embedder(bundle.clap)
    estimates = separate_pairs(bundle.model, embed, pairs, clips.prompts, n_slots)
    prompts = [[clips.prompts[int(c)] for c in row] for row in pairs.labels[:, 0]]
    return {
        "run": str(run),
        "mode": regime.name,
        "sources": config["train"]["sources"],
        "conditioning": config["train"]["conditioning"],
        "assignment": regime.assignment,
        "step": config["step"],
        **score(estimates, pairs, backend, clips.class_names),
        **clap_score(bundle.clap, estimates, pairs.mixtures[:, 0], prompts, config["sample_rate"]),
    }
