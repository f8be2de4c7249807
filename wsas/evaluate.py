"""Evaluation on the fixed 2-source test mixtures (the paper's protocol).

Each source of a test mixture is queried with its label prompt; estimates are scored with BSS
Eval v3 ``bss_eval_sources`` (SDR, SIR, SAR; 512-tap distortion filter, no permutation search
since a query-conditioned output is already assigned to its source), plus SI-SDR and the SDR
improvement over the mixture. Two back-ends give the same numbers: ``fast`` (the same
decomposition solved by block Levinson and batched over items, default) and ``mir_eval`` (the
reference). Unconditional models (PIT, MixIT) have no queries: their outputs are assigned to
references by the best permutation (PIT) or the best selection of 2 of their 2N outputs
(MixIT): an oracle advantage, stated in every table. Bounds on the same mixtures: the mixture
itself, the class-template mask (a static mask from each class's mean training spectrum: labels
given, nothing learned),
and the oracle ideal ratio mask (the ceiling of any mask-based separator with the mixture phase).

References are loudness-normalised clips that are active most of the time; a reference with
less than 1e-8 mean energy would make SDR meaningless and is dropped with its pair.
"""

from __future__ import annotations

import functools
import itertools
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
from wsas.losses import si_sdr
from wsas.models.queries import separate_pairs
from wsas.regimes import get_regime

FILTER_TAPS = 512  # BSS Eval v3's distortion filter length (taps)
_TRUST = 1e-9  # smallest relative prediction-error power at which the Levinson solve is trusted


def bss_eval(
    estimates: torch.Tensor, references: torch.Tensor, backend: str = "fast"
) -> dict[str, np.ndarray]:
    """BSS Eval v3 per source: ``(P, N, S)`` x2 -> ``{"sdr", "sir", "sar"}`` each ``(P, N)`` in dB.

    ``mir_eval``: ``bss_eval_sources`` item by item (the reference). ``fast``: the same
    decomposition (:func:`bss_eval_v3`) with the least-squares filters solved by block Levinson,
    batched over items; agrees with mir_eval to ~1e-10 dB on real signals.
    """
    est, ref = estimates.double().cpu().numpy(), references.double().cpu().numpy()
    if backend == "fast":
        sdr, sir, sar = bss_eval_v3(est, ref)
    elif backend == "mir_eval":
        import mir_eval.separation

        rows = [
            mir_eval.separation.bss_eval_sources(r, e, compute_permutation=False)[:3]
            for r, e in zip(ref, est)
        ]
        sdr, sir, sar = (
            np.asarray(rows, dtype=np.float64).reshape(len(ref), 3, -1).transpose(1, 0, 2)
        )
    else:
        raise WsasError(f"unknown BSS Eval back-end '{backend}' (fast or mir_eval)")
    return {"sdr": sdr, "sir": sir, "sar": sar}


def bss_eval_v3(
    estimates: np.ndarray,
    references: np.ndarray,
    taps: int = FILTER_TAPS,
    chunk: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BSS Eval v3 ``bss_eval_sources``, no permutation: ``(P, N, S)`` x2 -> SDR, SIR, SAR (P, N).

    Float64 in, dB out. Vincent et al. 2006, as in mir_eval 0.8: estimate j is projected on
    the delays 0..taps-1 of reference j (target) and of all references (target +
    interference); the rest is artefact. The normal equations are block Toeplitz in the delay,
    so they are solved exactly (not iteratively) by block Levinson recursion in O(taps^2) per
    item, vectorised over ``chunk`` items (default: by length), and each source's own filter by
    scipy's Levinson-Durbin; items whose recursion loses precision (near-singular references,
    e.g. a pure tone) are solved densely as mir_eval does.
    Correlations use FFTs; energies are quadratic forms of the filters with the Gram matrix
    (mir_eval sums the projected signals: the same numbers, to ~1e-10 dB). Ratios above
    100 dB are float64 rounding of an exact decomposition (the mixture scored against its
    sources) and are returned as +inf.
    """
    if len(references) == 0:
        return tuple(np.zeros(references.shape[:2]) for _ in range(3))
    chunk = chunk or max(1, min(32, 2**21 // references.shape[-1]))  # ~0.5 GB peak at most
    out = [
        _bss_eval_chunk(estimates[i : i + chunk], references[i : i + chunk], taps)
        for i in range(0, len(references), chunk)
    ]
    return tuple(np.concatenate([o[k] for o in out]) for k in range(3))


def _bss_eval_chunk(est: np.ndarray, ref: np.ndarray, taps: int):
    import scipy.fft
    import scipy.linalg

    p, n, s = ref.shape
    nfft = scipy.fft.next_fast_len(s + taps - 1, real=True)  # linear, not circular, correlations
    fft = functools.partial(scipy.fft.rfft, n=nfft)
    ifft = functools.partial(scipy.fft.irfft, n=nfft)
    ref_f, est_f = fft(ref), fft(est)  # (P, N, F)
    corr = ifft(ref_f[:, :, None] * ref_f[:, None].conj())  # [p, i, j, k] = sum_t r_i(t+k) r_j(t)
    lags = np.concatenate([corr[..., nfft - taps + 1 :], corr[..., :taps]], -1)  # k = 1-taps..
    del corr
    delays = (-np.arange(taps)) % nfft
    rhs = ifft(ref_f[:, None] * est_f[:, :, None].conj())[..., delays]  # (P, N est, N ref, taps)
    gamma = lags.transpose(0, 3, 1, 2)  # (P, 2 taps - 1, N, N): gamma(k)[i, j]
    coef_all, ok = _block_levinson(gamma, rhs.transpose(0, 3, 2, 1))  # (P, taps, N ref, N est)
    own = np.arange(n)
    coef_all, coef_one = coef_all.transpose(0, 3, 2, 1), np.empty((p, n, taps))
    # One source's system is a diagonal block of the joint one: no worse conditioned.
    for i, j in itertools.product(np.flatnonzero(ok), own):
        column, row = lags[i, j, j, taps - 1 :: -1], lags[i, j, j, taps - 1 :]
        try:
            coef_one[i, j] = scipy.linalg.solve_toeplitz((column, row), rhs[i, j, j])
        except np.linalg.LinAlgError:
            ok[i] = False
    for i in np.flatnonzero(~ok):
        coef_all[i], coef_one[i] = _dense_filters(lags[i], rhs[i])
    # Energies as quadratic forms of the filters: ||R c||^2 = c.G c, <e, R c> = c.rhs.
    coef_own = np.zeros_like(coef_all)  # (P, N est, N ref, taps): own filter in its own slot
    coef_own[:, own, own] = coef_one
    gram_all, gram_own = _gram_times(lags, coef_all), _gram_times(lags, coef_own)
    dot = functools.partial(np.einsum, "penk,penk->pe")
    energy = (est**2).sum(-1)  # (P, N)
    target, projected = dot(coef_own, gram_own), dot(coef_all, gram_all)
    interference = dot(coef_all - coef_own, gram_all - gram_own)
    distortion = energy - 2 * dot(coef_own, rhs) + target  # ||e - P_own e||^2
    artefacts = energy - 2 * dot(coef_all, rhs) + projected  # ||e - P_all e||^2
    return _db(target, distortion), _db(target, interference), _db(projected, artefacts)


def _gram_times(lags: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """``G c`` for the block Toeplitz Gram matrix: ``lags (P, N, N, 2L-1)``, ``coef (P, K, N, L)``
    -> ``(P, K, N, L)`` with ``[p, k, i, a] = sum_j,b gamma_ij(b - a) coef[p, k, j, b]``."""
    import scipy.fft

    taps = coef.shape[-1]
    size = scipy.fft.next_fast_len(3 * taps - 2, real=True)
    kernel = scipy.fft.rfft(lags[..., ::-1], size)  # (P, N, N, F): a full convolution
    spec = np.einsum("pijf,pkjf->pkif", kernel, scipy.fft.rfft(coef, size))
    return scipy.fft.irfft(spec, size)[..., taps - 1 : 2 * taps - 1]


def _db(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 1e-10 * num, 10 * np.log10(num / den), np.inf)


def _block_levinson(gamma: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``sum_b gamma(b - a) x[b] = rhs[a]``, a, b = 0..L-1 (symmetric positive definite).

    ``gamma (B, 2L-1, N, N)`` holds lags -(L-1)..L-1 (``gamma(-k) = gamma(k).T``), ``rhs (B, L,
    N, K)``; returns ``x (B, L, N, K)`` and ``ok (B,)``: whether the forward and backward
    prediction errors stayed above ``_TRUST`` times the zero-lag power (otherwise x is unreliable).
    Whittle's multichannel Levinson recursion: forward ``U`` and backward ``V`` predictors with
    ``T_m U = [P; 0..]`` and ``T_m V = [0..; Q]`` grow one delay a step; x follows from V.
    """
    b, n_lags, n, _ = gamma.shape
    size, k = (n_lags + 1) // 2, rhs.shape[-1]
    by_row = np.ascontiguousarray(gamma.transpose(0, 2, 1, 3))  # (B, N, 2L-1, N)

    def rows(lo: int, hi: int) -> np.ndarray:  # [gamma(lo - L + 1) .. gamma(hi - L)] side by side
        return by_row[:, :, lo:hi].reshape(b, n, (hi - lo) * n)

    def stack(blocks: np.ndarray, m: int) -> np.ndarray:
        return blocks[:, :m].reshape(b, m * n, -1)

    fwd = np.zeros((b, size, n, n))
    fwd[:, 0] = np.eye(n)
    bwd = fwd.copy()
    p_err, q_err = gamma[:, size - 1].copy(), gamma[:, size - 1].copy()
    x = np.zeros(rhs.shape)
    with np.errstate(all="ignore"):
        try:
            x[:, 0] = np.linalg.solve(q_err, rhs[:, 0])
            for m in range(1, size):
                past = rows(size - 1 - m, size - 1)  # gamma(b - m), b = 0..m-1
                alpha, beta = past @ stack(fwd, m), rows(size, size + m) @ stack(bwd, m)
                k_fwd, k_bwd = -np.linalg.solve(q_err, alpha), -np.linalg.solve(p_err, beta)
                new_bwd = (stack(fwd, m + 1) @ k_bwd).reshape(b, m + 1, n, n)
                new_bwd[:, 1:] += bwd[:, :m]
                fwd[:, 1 : m + 1] += (stack(bwd, m) @ k_fwd).reshape(b, m, n, n)
                p_err += beta @ k_fwd
                q_err += alpha @ k_bwd
                bwd[:, : m + 1] = new_bwd
                w = np.linalg.solve(q_err, rhs[:, m] - past @ stack(x, m))
                x[:, : m + 1] += (stack(bwd, m + 1) @ w).reshape(b, m + 1, n, k)
            power = np.linalg.eigvalsh(gamma[:, size - 1]).max(-1)
            least = np.minimum(np.linalg.eigvalsh(p_err).min(-1), np.linalg.eigvalsh(q_err).min(-1))
            ok = (least > _TRUST * power) & np.isfinite(x).all((1, 2, 3))
        except np.linalg.LinAlgError:
            ok = np.zeros(b, dtype=bool)
    return x, ok


def _dense_filters(lags: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mir_eval's dense solve for one item: ``lags (N, N, 2L-1)``, ``rhs (N est, N ref, L)`` ->
    filters on all references ``(N est, N ref, L)`` and on its own ``(N, L)``."""
    n, taps = rhs.shape[1], rhs.shape[-1]
    idx = np.arange(taps)
    gram = lags[:, :, idx[None, :] - idx[:, None] + taps - 1]  # (N, N, L, L)
    gram = gram.transpose(0, 2, 1, 3).reshape(n * taps, n * taps)

    def solve(a: np.ndarray, y: np.ndarray) -> np.ndarray:
        try:
            return np.linalg.solve(a, y)
        except np.linalg.LinAlgError:
            return np.linalg.lstsq(a, y, rcond=None)[0]

    every = solve(gram, rhs.reshape(n, n * taps).T).T.reshape(n, n, taps)
    own = np.stack(
        [
            solve(gram[j * taps : (j + 1) * taps, j * taps : (j + 1) * taps], rhs[j, j])
            for j in range(n)
        ]
    )
    return every, own


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
) -> dict:
    """Mean SDR/SIR/SAR/SI-SDR/SDRi and level error over all sources, and mean SDR per class
    (keyed by ``class_names[label]``, or the label index without names)."""
    return summarise(score_sources(estimates, pairs, backend), class_names=class_names)


def source_metrics(
    estimates: torch.Tensor, references: torch.Tensor, backend: str = "fast"
) -> dict[str, np.ndarray]:
    """SDR, SIR, SAR (BSS Eval v3) and SI-SDR in dB of each estimate against its own reference,
    and its level error ``level_db``: its energy over the reference's in dB, signed (negative:
    too quiet), floored at -60 dB so that a silent estimate does not dominate a mean; the four
    other metrics forgive a wrong level. ``(P, N, S)`` x2 -> each ``(P, N)``."""
    est, ref = estimates.double(), references.double()
    energy = est.pow(2).sum(-1) / ref.pow(2).sum(-1).clamp_min(1e-20)
    return {
        **bss_eval(estimates, references, backend),
        "si_sdr": si_sdr(est, ref).numpy(),
        "level_db": (10 * torch.log10(energy.clamp_min(1e-6))).numpy(),
    }


def score_sources(
    estimates: torch.Tensor, pairs: MixtureBatch, backend: str = "fast"
) -> dict[str, np.ndarray]:
    """Per-source scores ``(P', 2)`` (sdr, sir, sar, si_sdr, sdri, level_db in dB, and labels) of
    the pairs whose references are not near-silent; concatenate several with :func:`summarise`."""
    refs, mix = pairs.sources[:, 0], pairs.mixtures[:, 0]
    keep = (refs.pow(2).mean(-1) > 1e-8).all(-1)
    refs, mix, est, labels = refs[keep], mix[keep], estimates[keep], pairs.labels[:, 0][keep]
    metrics = source_metrics(est, refs, backend)
    baseline = bss_eval(mix[:, None].expand_as(refs), refs, backend)["sdr"]
    return {
        **metrics,
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

    def per_item(x: np.ndarray) -> list[float | None]:
        return [round(float(v), 4) if np.isfinite(v) else None for v in x.mean(-1)]

    def per_class(x: np.ndarray) -> dict[str, float]:
        return {
            (class_names[int(c)] if class_names else str(int(c))): round(
                float(x[labels == c].mean()), 3
            )
            for c in np.unique(labels)
        }

    return {
        "pairs": len(labels),
        "sdr": mean(per["sdr"]),
        "sir": mean(per["sir"]),
        "sar": mean(per["sar"]),
        "si_sdr": float(per["si_sdr"].mean()),
        "sdri": float(per["sdri"].mean()),
        "level_db": float(per["level_db"].mean()),
        "sdr_per_class": per_class(per["sdr"]),
        "si_sdr_per_class": per_class(per["si_sdr"]),
        # per test mixture (mean of its two sources), in pair order: paired comparisons
        "items": {"sdr": per_item(per["sdr"]), "si_sdr": per_item(per["si_sdr"])},
    }


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
        **summarise(*parts, class_names=clips.class_names),
        **{k: float(np.average([c[k] for c in claps], weights=sizes)) for k in claps[0]},
    }
