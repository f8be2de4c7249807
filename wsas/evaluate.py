"""Evaluation on the fixed 2-source test mixtures (the paper's protocol).

Each source of a test mixture is queried with its label prompt; estimates are scored with BSS
Eval v3 ``bss_eval_sources`` (SDR, SIR, SAR; 512-tap distortion filter, no permutation search
since a query-conditioned output is already assigned to its source), plus SI-SDR and the SDR
improvement over the mixture. Two back-ends give the same numbers: ``fast`` (the same
decomposition solved by block Levinson and batched over items, default) and ``mir_eval`` (the
reference). Unconditional models (PIT, MixIT) have no
queries: their outputs are assigned to references by the best permutation (an oracle advantage,
stated in every table). Bounds on the same mixtures: the mixture itself, the class-template
mask (a static mask from each class's mean training spectrum: labels given, nothing learned),
and the oracle ideal ratio mask (the ceiling of any mask-based separator with the mixture phase).

References are loudness-normalised clips that are active most of the time; a reference with
less than 1e-8 mean energy would make SDR meaningless and is dropped with its pair.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from wsas.audio import istft, stft
from wsas.data.classes import CLASS_NAMES, PROMPTS
from wsas.data.datasets import ClipSet
from wsas.data.mixing import MixtureBatch
from wsas.errors import WsasError
from wsas.losses import si_sdr
from wsas.models.separator import MaskSeparator

Embed = Callable[[list[str]], torch.Tensor]


def label_queries(embed: Embed, labels: torch.Tensor) -> torch.Tensor:
    """Label-prompt embeddings ``(B, N, D)`` for class indices ``(B, N)``."""
    return embed([PROMPTS[int(c)] for c in labels.flatten()]).reshape(*labels.shape, -1)


@torch.no_grad()
def separate_pairs(
    model: MaskSeparator, embed: Embed, pairs: MixtureBatch, n_slots: int = 0, batch: int = 16
) -> torch.Tensor:
    """Estimates ``(P, 2, S)`` aligned with ``pairs.sources[:, 0]``.

    Conditioned models get the two label prompts; unconditional ones (``n_slots > 0``) get their
    slot queries and the best permutation of outputs to references (by SI-SDR).
    """
    from wsas.train import slot_queries

    device = next(model.parameters()).device
    mixtures, refs, labels = pairs.mixtures[:, 0], pairs.sources[:, 0], pairs.labels[:, 0]
    out = []
    for start in range(0, len(mixtures), batch):
        mix = mixtures[start : start + batch].to(device)
        if n_slots:
            queries = (
                slot_queries(n_slots, model.config.cond_dim).to(device).expand(len(mix), -1, -1)
            )
        else:
            queries = label_queries(embed, labels[start : start + batch]).to(device)
        est = model(mix, queries).float().cpu()
        if n_slots:
            est = best_permutation(est, refs[start : start + batch])
        out.append(est)
    return torch.cat(out)


def best_permutation(outputs: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
    """Pick, for ``refs (B, N, S)``, the outputs ``(B, M, S)`` (M >= N) that maximise mean SI-SDR."""
    n, m = refs.shape[1], outputs.shape[1]
    scores = si_sdr(outputs[:, :, None], refs[:, None])  # (B, M, N)
    perms = list(itertools.permutations(range(m), n))
    totals = torch.stack(
        [scores[:, list(p), list(range(n))].sum(-1) for p in perms], dim=-1
    )  # (B, P)
    best = totals.argmax(-1)
    return torch.stack([outputs[b, list(perms[int(i)])] for b, i in enumerate(best)])


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


def score(estimates: torch.Tensor, pairs: MixtureBatch, backend: str = "fast") -> dict:
    """Mean SDR/SIR/SAR/SI-SDR/SDRi over all sources, SDR and SI-SDR per class, and per item.

    ``estimates (P, 2, S)`` align with ``pairs.sources[:, 0]``. ``items`` holds, for each kept
    pair in the order of ``pairs``, the mean over its two sources of SDR and SI-SDR (dB): the
    same test mixtures give the same item order, so methods can be compared pair by pair.
    """
    refs, mix = pairs.sources[:, 0], pairs.mixtures[:, 0]
    keep = (refs.pow(2).mean(-1) > 1e-8).all(-1)
    refs, mix, est, labels = refs[keep], mix[keep], estimates[keep], pairs.labels[:, 0][keep]
    metrics = bss_eval(est, refs, backend)
    baseline = bss_eval(mix[:, None].expand_as(refs), refs, backend)["sdr"]
    scale_free = si_sdr(est.double(), refs.double()).numpy()  # (P, 2)
    per_class, si_per_class = {}, {}
    for name_idx in labels.unique():
        sel = (labels == name_idx).numpy()
        per_class[CLASS_NAMES[int(name_idx)]] = round(float(metrics["sdr"][sel].mean()), 3)
        si_per_class[CLASS_NAMES[int(name_idx)]] = round(float(scale_free[sel].mean()), 3)

    def mean(x) -> float | None:  # SAR of the mixture itself is +inf: null (JSON has no inf)
        value = float(np.mean(x))
        return value if np.isfinite(value) else None

    def per_item(x: np.ndarray) -> list[float | None]:
        return [round(float(v), 4) if np.isfinite(v) else None for v in x.mean(-1)]

    return {
        "pairs": int(keep.sum()),
        "sdr": mean(metrics["sdr"]),
        "sir": mean(metrics["sir"]),
        "sar": mean(metrics["sar"]),
        "si_sdr": float(scale_free.mean()),
        "sdri": float((metrics["sdr"] - baseline).mean()),
        "sdr_per_class": per_class,
        "si_sdr_per_class": si_per_class,
        "items": {"sdr": per_item(metrics["sdr"]), "si_sdr": per_item(scale_free)},
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
    """Reference-free scores of ``estimates (P, K, S)`` from ``mixtures (P, S)`` queried by ``texts [P][K]``.

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
    """CLAPScore of caption-driven separations of every file listed in ``FOLDER/captions.csv`` (file, caption)."""
    import csv

    from wsas.audio import load
    from wsas.captions import parse
    from wsas.clap.base import cached_text_embedder

    folder = Path(folder)
    listing = folder / "captions.csv"
    if not listing.is_file():
        raise WsasError(f"{listing}: missing (a CSV with columns file,caption)")
    model, clap, config = load_separator(checkpoint)
    embed = cached_text_embedder(clap)
    rows = []
    with open(listing, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            wave, sr = load(folder / row["file"], sr=config["sample_rate"])
            clauses = parse(row["caption"])
            est = model(wave[None], embed(clauses)[None]).cpu()
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


def load_separator(checkpoint: str | os.PathLike, device: str | torch.device = "cpu"):
    """``(model, clap, config)`` from a separator checkpoint (self-contained for the tiny CLAP)."""
    from wsas.checkpoint import load_checkpoint
    from wsas.clap.base import load_clap
    from wsas.clap.tiny import TinyClap
    from wsas.models.unet import UNetConfig

    tensors, config = load_checkpoint(checkpoint, kind="separator")
    try:
        model = MaskSeparator(UNetConfig(**config["unet"]), config["sample_rate"])
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except (TypeError, RuntimeError) as err:
        raise WsasError(
            f"{checkpoint}: does not match this version's separator ({str(err).splitlines()[0]})"
        ) from None
    model.to(device).eval()
    clap_info = config["clap"]
    if clap_info["backend"] == "tiny":
        clap = TinyClap(clap_info["config"])
        clap.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("clap.")})
        clap = clap.to(device).freeze()
    else:
        clap = load_clap("laion", clap_info["checkpoint"], device)
    return model, clap, config


def evaluate_run(
    run: str | os.PathLike,
    corpus: str | os.PathLike,
    n_pairs: int,
    backend: str = "fast",
    seed: int = 1234,
) -> dict:
    """Score a training run's checkpoint on the fixed test pairs of ``corpus``."""
    from wsas.clap.base import cached_text_embedder
    from wsas.data.datasets import load_embedded
    from wsas.data.mixing import fixed_pairs

    run = Path(run)
    checkpoint = run / "checkpoint.safetensors" if run.is_dir() else run
    model, clap, config = load_separator(checkpoint)
    embed = cached_text_embedder(clap)
    pairs = fixed_pairs(load_embedded(corpus, "test"), n_pairs, seed)
    unconditional = config["train"]["mode"] in ("pit", "mixit")
    estimates = separate_pairs(model, embed, pairs, config["n_slots"] if unconditional else 0)
    prompts = [[PROMPTS[int(c)] for c in row] for row in pairs.labels[:, 0]]
    return {
        "run": str(run),
        "mode": config["train"]["mode"],
        "sources": config["train"]["sources"],
        "conditioning": config["train"]["conditioning"],
        "oracle_permutation": unconditional,
        "step": config["step"],
        **score(estimates, pairs, backend),
        **clap_score(clap, estimates, pairs.mixtures[:, 0], prompts, config["sample_rate"]),
    }
