"""Evaluation on the fixed 2-source test mixtures (the paper's protocol).

Each source of a test mixture is queried with its label prompt; estimates are scored with BSS
Eval v3 ``bss_eval_sources`` (SDR, SIR, SAR; 512-tap distortion filter, no permutation search
since a query-conditioned output is already assigned to its source), plus every other "SDR"
the field reports, on the same estimates (:mod:`wsas.metrics` defines each): SI-SDR, the
improvements over the mixture (``sdri`` for BSS Eval SDR, ``si_sdri``) and the SNR-style SDR
of AudioSep and the DCASE 2024 task 9 evaluator (``snr_sdr``, ``snr_sdri``). Two BSS Eval
back-ends give the same numbers: ``fast`` (the same decomposition solved by block Levinson and
batched over items, default) and ``mir_eval`` (the reference). Unconditional models (PIT,
MixIT) have no queries: their outputs are assigned to
references by the best permutation (PIT) or the best selection of 2 of their 2N outputs
(MixIT): an oracle advantage, stated in every table. Bounds on the same mixtures: the mixture
itself, the class-template mask (a static mask from each class's mean training spectrum: labels
given, nothing learned),
and the oracle ideal ratio mask (the ceiling of any mask-based separator with the mixture phase).

References are loudness-normalised clips that are active most of the time; a reference with
less than 1e-8 mean energy would make SDR meaningless and is dropped with its pair. With
``drop_silent`` a mixture with a near-silent estimate (:func:`wsas.metrics.near_silent`) is
also left out of the means, as the authors' evaluation does, and the report counts them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from wsas.audio import CHUNK_SECONDS, OVERLAP_SECONDS, istft, load, process_in_chunks, stft
from wsas.bundle import load_run
from wsas.captions import parse
from wsas.clap import query_embedder
from wsas.data.datasets import ClipSet, load_clips, read_table
from wsas.data.mixing import MixtureBatch, distinct_pairs, fixed_pair_batches
from wsas.errors import WsasError
from wsas.metrics import (
    SILENT_DB,
    bss_eval,
    improvement,
    near_silent,
    si_sdr,
    snr_sdr,
    source_metrics,
)
from wsas.models.queries import separate_pairs
from wsas.regimes import get_regime


def oracle_irm(pairs: MixtureBatch, n_fft: int, hop: int) -> torch.Tensor:
    """Ideal ratio mask estimates ``(P, 2, S)``: ``|S_i| / sum_j |S_j|`` on the mixture STFT."""
    refs, mix = pairs.sources[:, 0], pairs.mixtures[:, 0]
    mags = stft(refs, n_fft, hop).abs()
    masks = mags / mags.sum(1, keepdim=True).clamp_min(1e-8)
    return istft(masks * stft(mix, n_fft, hop).unsqueeze(1), n_fft, hop, mix.shape[-1])


def class_templates(clips: ClipSet, n_fft: int, hop: int, batch: int = 256) -> torch.Tensor:
    """Each class's mean magnitude spectrum ``(C, F)`` over all frames of its ``clips``.

    ``C = len(clips.class_names)``, ``F = n_fft // 2 + 1``; computed with the separator's STFT.
    A class without clips gets a zero row (:func:`template_mask` refuses it).
    """
    n_classes, n_freq = len(clips.class_names), n_fft // 2 + 1
    sums = torch.zeros(n_classes, n_freq, dtype=torch.float64)
    frames = torch.zeros(n_classes, dtype=torch.float64)
    for start in range(0, len(clips), batch):
        mags = stft(clips.waves[start : start + batch].float(), n_fft, hop).abs()  # (B, F, T)
        labels = clips.labels[start : start + batch]
        sums.index_add_(0, labels, mags.sum(-1).double())
        frames.index_add_(0, labels, torch.full((len(labels),), float(mags.shape[-1])).double())
    return (sums / frames.clamp_min(1)[:, None]).float()


def template_mask(
    pairs: MixtureBatch, templates: torch.Tensor, n_fft: int, hop: int
) -> torch.Tensor:
    """Class-template estimates ``(P, 2, S)``: the static mask ``T_i / (T_a + T_b)`` on the mixture.

    ``templates (C, F)`` from :func:`class_templates`; labels are given, nothing is learned and
    the mask does not vary in time (a separator that does not beat it has learned nothing that
    depends on the mixture). The mixture phase is kept.
    """
    labels, mix = pairs.labels[:, 0], pairs.mixtures[:, 0]  # (P, 2), (P, S)
    missing = sorted({int(c) for c in labels.unique() if not templates[int(c)].any()})
    if missing:
        raise WsasError(f"no class template for class index(es) {missing}: no training clips")
    chosen = templates[labels]  # (P, 2, F)
    masks = chosen / chosen.sum(1, keepdim=True).clamp_min(1e-12)
    spec = stft(mix, n_fft, hop).unsqueeze(1)  # (P, 1, F, T)
    return istft(masks[..., None] * spec, n_fft, hop, mix.shape[-1])


def score(
    estimates: torch.Tensor,
    pairs: MixtureBatch,
    backend: str = "fast",
    class_names: tuple[str, ...] | None = None,
    drop_silent: bool = False,
) -> dict:
    """Mean scores of ``estimates (P, 2, S)`` over all sources (every metric of
    :func:`score_sources`), and mean SDR per class (keyed by ``class_names[label]``, or the label
    index without names); ``drop_silent`` as in :func:`summarise`."""
    parts = score_sources(estimates, pairs, backend)
    return summarise(parts, class_names=class_names, drop_silent=drop_silent)


def score_sources(
    estimates: torch.Tensor, pairs: MixtureBatch, backend: str = "fast"
) -> dict[str, np.ndarray]:
    """Per-source scores ``(P', 2)`` of the pairs whose references are not near-silent: sdr, sir,
    sar, si_sdr, snr_sdr, their improvements over the mixture sdri, si_sdri, snr_sdri, level_db
    (all dB), ``silent`` (bool: the estimate is near-silent) and labels; concatenate several
    with :func:`summarise`."""
    refs, mix = pairs.sources[:, 0], pairs.mixtures[:, 0]
    keep = (refs.pow(2).mean(-1) > 1e-8).all(-1)
    refs, mix, est, labels = refs[keep], mix[keep], estimates[keep], pairs.labels[:, 0][keep]
    metrics = source_metrics(est, refs, backend)
    mix, ref64 = mix[:, None].double(), refs.double()
    baseline = bss_eval(mix.expand_as(refs), refs, backend)["sdr"]
    return {
        **metrics,
        "sdri": metrics["sdr"] - baseline,
        "si_sdri": improvement(si_sdr, est.double(), mix, ref64).numpy(),
        "snr_sdri": improvement(snr_sdr, est.double(), mix, ref64).numpy(),
        "silent": near_silent(est, mix).numpy(),
        "labels": labels.numpy(),
    }


def summarise(
    *parts: dict[str, np.ndarray],
    class_names: tuple[str, ...] | None = None,
    drop_silent: bool = False,
) -> dict:
    """The means of :func:`score` from one or more :func:`score_sources` results.

    ``silent_pairs`` counts the mixtures with a near-silent estimate; with ``drop_silent`` they
    are left out of every mean (``pairs`` counts those kept), as the authors average. ``items``
    always lists every mixture, so that paired comparisons between runs line up.
    """
    per = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    silent = per["silent"].any(-1) if "silent" in per else np.zeros(len(per["labels"]), bool)
    items = {k: _per_item(per[k]) for k in ("sdr", "si_sdr")}
    if drop_silent:
        if silent.all():
            raise WsasError(f"every one of the {len(silent)} mixtures has a near-silent estimate")
        per = {k: v[~silent] for k, v in per.items()}
    labels = per["labels"]

    def mean(key: str) -> float | None:  # SAR of the mixture itself is +inf: stored as null
        value = float(np.mean(per[key]))
        return value if np.isfinite(value) else None

    def per_class(x: np.ndarray) -> dict[str, float]:
        return {
            (class_names[int(c)] if class_names else str(int(c))): round(
                float(x[labels == c].mean()), 3
            )
            for c in np.unique(labels)
        }

    return {
        "pairs": len(labels),
        **{k: mean(k) for k in ("sdr", "sir", "sar", "si_sdr", "sdri", "level_db")},
        **{k: mean(k) for k in ("si_sdri", "snr_sdr", "snr_sdri") if k in per},
        "silent_pairs": int(silent.sum()),
        "dropped_silent": int(silent.sum()) if drop_silent else 0,
        "sdr_per_class": per_class(per["sdr"]),
        "si_sdr_per_class": per_class(per["si_sdr"]),
        # per test mixture (mean of its two sources), in pair order: paired comparisons
        "items": items,
    }


def _per_item(x: np.ndarray) -> list[float | None]:
    return [round(float(v), 4) if np.isfinite(v) else None for v in x.mean(-1)]


def bounds(
    pairs: MixtureBatch,
    n_fft: int,
    hop: int,
    backend: str = "fast",
    templates: torch.Tensor | None = None,
) -> dict:
    """Scores of the mixture itself (lower bound), of the class-template mask (when ``templates
    (C, F)`` from the training clips are given) and of the oracle ideal ratio mask (ceiling)."""
    mixture = pairs.mixtures[:, 0][:, None].expand_as(pairs.sources[:, 0])
    out = {"mixture": score(mixture, pairs, backend)}
    if templates is not None:
        out["class_template"] = score(template_mask(pairs, templates, n_fft, hop), pairs, backend)
    out["oracle_irm"] = score(oracle_irm(pairs, n_fft, hop), pairs, backend)
    return out


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
    folder = Path(folder)
    listing = folder / "captions.csv"
    if not listing.is_file():
        raise WsasError(f"{listing}: missing (a CSV with columns file,caption)")
    entries = read_table(listing, ("file", "caption"))
    if not entries:
        raise WsasError(f"{listing}: lists no files")
    bundle = load_run(checkpoint)
    model, clap, sr = bundle.model, bundle.clap, bundle.config["sample_rate"]
    embed = query_embedder(clap, model.config.conditioning, model.config.max_tokens)
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
    drop_silent: bool = False,
) -> dict:
    """Score a run on the fixed 2-source test pairs of ``data`` (a corpus folder, or a labelled
    layout ``music:DIR`` / ``vggsound:DIR`` cut to ``clip_samples``), each source queried by its
    label prompt; unconditional models get their regime's oracle assignment.

    ``n_pairs`` is at most the number of distinct 2-source mixtures the test split holds; the
    pairs are drawn, separated and scored ``batch`` at a time, so memory does not grow with it.
    ``drop_silent``: leave mixtures with a near-silent estimate out of the means (the authors'
    averaging, :func:`summarise`); CLAPScore stays over all mixtures.
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
    unet = bundle.model.config
    embed = query_embedder(bundle.clap, unet.conditioning, unet.max_tokens)
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
        "test_clip_seconds": round(clips.waves.shape[-1] / clips.sr, 3),
        **summarise(*parts, class_names=clips.class_names, drop_silent=drop_silent),
        "silent_below_db": SILENT_DB,
        **{k: float(np.average([c[k] for c in claps], weights=sizes)) for k in claps[0]},
    }


DCASE_LISTING = "lass_synthetic_validation.csv"  # the task 9 synthetic validation index
DCASE_AUDIO = "lass_validation"  # its folder of clips, named by the CSV's source/noise (no .wav)


def dcase_mixture(source: torch.Tensor, noise: torch.Tensor, snr_db: float):
    """The DCASE 2024 task 9 evaluator's mixing rule: ``source, noise (S,)`` -> the reference
    and the mixture ``(S,)``, float64.

    The noise is scaled so that the source's mean power over the noise's is ``snr_db``; when the
    mixture's peak exceeds 1, the source and the mixture are both scaled to peak 0.9 (the
    evaluator's "declipping"), so the reference stays the mixture's own source.
    """
    source, noise = source.double(), noise.double()
    noise_power = noise.pow(2).mean()
    if not noise_power > 0:
        raise WsasError("a silent noise clip cannot be mixed at an SNR")
    noise = noise * torch.sqrt(source.pow(2).mean() / 10 ** (snr_db / 10) / noise_power)
    mixture = source + noise
    peak = float(mixture.abs().max())
    if peak > 1:
        source, mixture = source * 0.9 / peak, mixture * 0.9 / peak
    return source, mixture


def _dcase_rows(folder: Path) -> list[tuple[str, str, float, str]]:
    """``(source, noise, snr_db, caption)`` per line of ``FOLDER/lass_synthetic_validation.csv``."""
    listing = folder / DCASE_LISTING
    if not listing.is_file():
        raise WsasError(f"{listing}: missing (a CSV with columns source,noise,snr,query)")
    rows = read_table(listing, ("source", "noise", "snr"))
    caption = next((c for c in ("query", "caption") if rows and c in rows[0]), None)
    if not rows:
        raise WsasError(f"{listing}: lists no mixtures")
    if caption is None:
        raise WsasError(f"{listing}: no column 'query' (the caption of the source)")
    out = []
    for line, row in enumerate(rows, start=2):
        fields = [(row.get(k) or "").strip() for k in ("source", "noise", "snr", caption)]
        if not all(fields):
            raise WsasError(f"{listing}: line {line} leaves source, noise, snr or query empty")
        try:
            snr = float(fields[2])
        except ValueError:
            raise WsasError(f"{listing}: line {line}: snr '{fields[2]}' is not a number") from None
        out.append((fields[0], fields[1], snr, fields[3]))
    return out


def dcase_evaluate(checkpoint: str | os.PathLike, folder: str | os.PathLike) -> dict:
    """The DCASE 2024 task 9 synthetic validation, scored as that challenge's evaluator does.

    ``FOLDER`` holds ``lass_synthetic_validation.csv`` (columns ``source, noise, snr, query``;
    the evaluator reads them in that order) and the clips ``lass_validation/NAME.wav`` (or
    ``NAME.wav`` in FOLDER itself). Each line's source and noise are mixed by
    :func:`dcase_mixture` at the run's sample rate (the evaluator's is 16 kHz; a longer clip is
    cut to the shorter), the mixture is separated with the whole caption as one query, and
    scored by the evaluator's metrics: the SNR-style SDR (:func:`wsas.metrics.snr_sdr`), its
    improvement over the mixture, and SI-SDR without mean removal (AudioSep's
    ``calculate_sisdr``); means over all lines.
    """
    folder = Path(folder)
    rows = _dcase_rows(folder)
    audio = folder / DCASE_AUDIO if (folder / DCASE_AUDIO).is_dir() else folder
    bundle = load_run(checkpoint)
    if get_regime(bundle.config["train"]["mode"]).unconditional:
        raise WsasError(f"{checkpoint}: an unconditional model cannot be queried by a caption")
    model, sr = bundle.model, bundle.config["sample_rate"]
    embed = query_embedder(bundle.clap, model.config.conditioning, model.config.max_tokens)
    per_file, means = [], []
    for source_name, noise_name, snr, caption in rows:
        source, _ = load(audio / f"{source_name}.wav", sr=sr)
        noise, _ = load(audio / f"{noise_name}.wav", sr=sr)
        length = min(len(source), len(noise))
        reference, mixture = dcase_mixture(source[:length], noise[:length], snr)
        queries = embed([caption])[None]  # (1, 1, D)
        with torch.no_grad():
            estimate = process_in_chunks(
                lambda block: model(block[None], queries)[0].cpu(),  # noqa: B023 (used at once)
                mixture.float(),
                round(CHUNK_SECONDS * sr),
                round(OVERLAP_SECONDS * sr),
            )[0].double()
        scores = {
            "snr_sdr": snr_sdr(estimate, reference),
            "snr_sdri": improvement(snr_sdr, estimate, mixture, reference),
            "si_sdr": si_sdr(estimate, reference, _FLOAT32_EPS, zero_mean=False),
        }
        means.append([float(v) for v in scores.values()])
        per_file.append(
            {"source": source_name, "noise": noise_name, "snr": snr, "caption": caption}
            | {k: round(float(v), 4) for k, v in scores.items()}
        )
    return {
        "run": str(checkpoint),
        "mixtures": len(per_file),
        "sample_rate": sr,
        **dict(zip(scores, np.mean(means, axis=0).tolist())),
        "per_file": per_file,
    }


_FLOAT32_EPS = float(np.finfo(np.float32).eps)  # the evaluator's SI-SDR eps (librosa: float32)
