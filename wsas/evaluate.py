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

from wsas.audio import CHUNK_SECONDS, OVERLAP_SECONDS, istft, stft
from wsas.bundle import load_run
from wsas.clap import cached_text_embedder
from wsas.data.datasets import load_clips
from wsas.data.mixing import MixtureBatch, distinct_pairs, fixed_pair_batches
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
    return summarise(score_sources(estimates, pairs, backend), class_names=class_names)


def score_sources(
    estimates: torch.Tensor, pairs: MixtureBatch, backend: str = "fast"
) -> dict[str, np.ndarray]:
    """Per-source scores ``(P', 2)`` (sdr, sir, sar, si_sdr, sdri in dB, and labels) of the pairs
    whose references are not near-silent; concatenate several with :func:`summarise`."""
    refs, mix = pairs.sources[:, 0], pairs.mixtures[:, 0]
    keep = (refs.pow(2).mean(-1) > 1e-8).all(-1)
    refs, mix, est, labels = refs[keep], mix[keep], estimates[keep], pairs.labels[:, 0][keep]
    metrics = bss_eval(est, refs, backend)
    baseline = bss_eval(mix[:, None].expand_as(refs), refs, backend)["sdr"]
    return {
        **metrics,
        "si_sdr": si_sdr(est, refs).numpy(),
        "sdri": metrics["sdr"] - baseline,
        "labels": labels.numpy(),
    }


def summarise(*parts: dict[str, np.ndarray], class_names: tuple[str, ...] | None = None) -> dict:
    """The means of :func:`score` from one or more :func:`score_sources` results."""
    per = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    labels = per["labels"]

    def mean(x) -> float | None:  # SAR of the mixture itself is +inf: stored as null (JSON)
        value = float(np.mean(x))
        return value if np.isfinite(value) else None

    return {
        "pairs": len(labels),
        "sdr": mean(per["sdr"]),
        "sir": mean(per["sir"]),
        "sar": mean(per["sar"]),
        "si_sdr": float(per["si_sdr"].mean()),
        "sdri": float(per["sdri"].mean()),
        "sdr_per_class": {
            (class_names[int(c)] if class_names else str(int(c))): round(
                float(per["sdr"][labels == c].mean()), 3
            )
            for c in np.unique(labels)
        },
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


SCORE_SECONDS = 60.0  # reference-free scores look at each file's first minute (bounded memory)


def reference_free(checkpoint: str | os.PathLike, folder: str | os.PathLike) -> dict:
    """CLAPScore of caption-driven separations of the files in ``FOLDER/captions.csv``.

    The CSV has columns ``file`` (relative to FOLDER) and ``caption``. Each file's first
    ``SCORE_SECONDS`` are separated in overlapping windows, so memory is bounded by that.
    """
    import csv

    from wsas.audio import load, process_in_chunks
    from wsas.captions import parse

    folder = Path(folder)
    listing = folder / "captions.csv"
    if not listing.is_file():
        raise WsasError(f"{listing}: missing (a CSV with columns file,caption)")
    try:
        with open(listing, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns, entries = reader.fieldnames or [], list(reader)
    except (UnicodeDecodeError, csv.Error) as err:
        raise WsasError(f"{listing}: not a readable UTF-8 CSV ({err})") from None
    missing = [c for c in ("file", "caption") if c not in columns]
    if missing:
        raise WsasError(f"{listing}: no column {', '.join(missing)} (it needs file,caption)")
    if not entries:
        raise WsasError(f"{listing}: lists no files")
    bundle = load_run(checkpoint)
    model, clap, sr = bundle.model, bundle.clap, bundle.config["sample_rate"]
    embed = cached_text_embedder(clap)
    rows = []
    for line, row in enumerate(entries, start=2):
        if not (row.get("file") or "").strip():
            raise WsasError(f"{listing}: line {line} names no file")
        wave, _ = load(folder / row["file"], sr=sr, max_seconds=SCORE_SECONDS)
        clauses = parse(row.get("caption") or "")
        queries = embed(clauses)[None]
        with torch.no_grad():
            est = process_in_chunks(
                lambda block: model(block[None], queries)[0].cpu(),  # noqa: B023 (used at once)
                wave,
                round(CHUNK_SECONDS * sr),
                round(OVERLAP_SECONDS * sr),
            )[None]  # (1, K, S)
        rows.append(
            {
                "file": row["file"],
                "clauses": clauses,
                **clap_score(clap, est, wave[None], [clauses], sr),
            }
        )
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
    batch: int = 64,
) -> dict:
    """Score a run on the fixed 2-source test pairs of ``data`` (a corpus folder, or a labelled
    layout ``music:DIR`` / ``vggsound:DIR`` cut to ``clip_samples``), each source queried by its
    label prompt; unconditional models get their regime's oracle assignment.

    ``n_pairs`` is at most the number of distinct 2-source mixtures the test split holds; the
    pairs are drawn, separated and scored ``batch`` at a time, so memory does not grow with it.
    """
    bundle = load_run(run)
    config = bundle.config
    clips = load_clips(data, "test", config["sample_rate"], clip_samples)
    limit = distinct_pairs(clips.labels)
    if not 1 <= n_pairs <= limit:
        raise WsasError(
            f"--pairs {n_pairs}: the test split of {data} holds {limit} distinct 2-source "
            f"mixtures; ask for 1 to {limit}"
        )
    regime = get_regime(config["train"]["mode"])
    n_slots = config["n_slots"] if regime.unconditional else 0
    embed = cached_text_embedder(bundle.clap)
    parts, claps = [], []
    for pairs in fixed_pair_batches(clips, n_pairs, seed, batch):
        estimates = separate_pairs(bundle.model, embed, pairs, clips.prompts, n_slots)
        prompts = [[clips.prompts[int(c)] for c in row] for row in pairs.labels[:, 0]]
        parts.append(score_sources(estimates, pairs, backend))
        mixtures = pairs.mixtures[:, 0]
        claps.append(clap_score(bundle.clap, estimates, mixtures, prompts, config["sample_rate"]))
    sizes = np.array([min(batch, n_pairs - i * batch) for i in range(len(claps))])
    return {
        "run": str(run),
        "mode": regime.name,
        "sources": config["train"]["sources"],
        "conditioning": config["train"]["conditioning"],
        "assignment": regime.assignment,
        "step": config["step"],
        **summarise(*parts, class_names=clips.class_names),
        **{k: float(np.average([c[k] for c in claps], weights=sizes)) for k in claps[0]},
    }
