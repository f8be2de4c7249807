"""``wsas bench``: speed and memory on this machine, written to ``results/bench.json``.

Measures (untrained weights of the chosen preset: speed does not depend on them):

* inference real-time factor (seconds of compute per second of audio) for a 10 s clip and a
  10 min file streamed from disk, with the peak resident memory of each (fresh subprocess);
* the shared-encoder speed-up on a weak-objective training step: the mixture encoded once
  and the queries batched, against one full separator pass per query;
* BSS Eval v3 throughput of the ``fast`` back-end against mir_eval on realistic separations
  (1 s and 6.4 s at 8 kHz), and their largest difference in dB.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from wsas.presets import get_preset


def _model(preset_name: str, conditioning: str = "deep"):
    from wsas.clap.tiny import TinyClap
    from wsas.models.separator import MaskSeparator

    p = get_preset(preset_name)
    clap = TinyClap({"sample_rate": p.sr}).freeze()
    return MaskSeparator(p.unet(conditioning, clap.embed_dim), p.sr).eval(), clap, p


def _timed(fn, repeats: int = 3) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


def _inference_worker(preset_name: str, seconds: float, queue) -> None:
    """Separate ``seconds`` of 44.1 kHz stereo noise from a file by two queries; report time and
    peak RSS."""
    import soundfile as sf

    from wsas.clap.base import cached_text_embedder
    from wsas.separate import Separator

    model, clap, p = _model(preset_name)
    sep = Separator(
        model, clap, {"sample_rate": p.sr, "train": {"mode": "weak"}}, torch.device("cpu")
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.wav"
        with sf.SoundFile(path, "w", 44100, 2, subtype="PCM_16") as f:
            block = np.random.default_rng(0).normal(0, 0.1, (44100 * 10, 2)).astype(np.float32)
            for _ in range(int(seconds // 10)):
                f.write(block)
        cached_text_embedder(clap)(["a dog barks"])
        started = time.perf_counter()
        sep.separate_file(
            path, ["a dog barks", "a violin plays"], Path(tmp) / "out", progress=False
        )
        elapsed = time.perf_counter() - started
    queue.put(
        {
            "audio_seconds": seconds,
            "compute_seconds": round(elapsed, 2),
            "rtf": round(elapsed / seconds, 4),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    )


def inference(preset_name: str, seconds: float) -> dict:
    """RTF and peak memory of a streamed file separation, measured in a fresh process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_inference_worker, args=(preset_name, seconds, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def shared_encoder_speedup(preset_name: str, conditioning: str, batch: int = 8) -> dict:
    """Weak-objective step (2 captions + 2K clauses per example, K = 2) with and without query
    batching."""
    from wsas.losses import reconstruction_loss

    model, clap, p = _model(preset_name, conditioning)
    model.train()
    k = 6
    mixture = torch.randn(batch, p.clip_samples) * 0.1
    queries = torch.nn.functional.normalize(torch.randn(batch, k, clap.embed_dim), dim=-1)

    def loss_from(masks, spec):
        waves = model.to_waves(masks, spec, mixture.shape[-1])
        emb = clap.embed_audio(waves.flatten(0, 1), p.sr)
        return (
            reconstruction_loss(masks, spec.abs(), masks.detach() * spec.abs().unsqueeze(1))
            + emb.sum()
        )

    def batched():
        masks, spec = model.masks(mixture, queries)
        loss_from(masks, spec).backward()

    def per_query():
        parts = [model.masks(mixture, queries[:, i : i + 1]) for i in range(k)]
        loss_from(torch.cat([m for m, _ in parts], dim=1), parts[0][1]).backward()

    t_batched, t_loop = _timed(batched, 2), _timed(per_query, 2)
    return {
        "conditioning": conditioning,
        "queries_per_example": k,
        "batch": batch,
        "batched_step_s": round(t_batched, 3),
        "one_pass_per_query_step_s": round(t_loop, 3),
        "speedup": round(t_loop / t_batched, 2),
    }


def separation_like(
    n_items: int, samples: int, sr: int = 8000, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Realistic BSS Eval inputs ``(estimates, references)``, each ``(n_items, 2, samples)``.

    Source 0 is a harmonic tone with vibrato and a tremolo envelope, source 1 band-limited noise
    with gaps; each estimate is its reference plus 10-50 % of the other source (leakage) plus
    low-passed noise at -14 dB (artefacts): SDRs of ~5-15 dB, like trained separators'.
    """
    import scipy.signal

    rng = np.random.default_rng(seed)
    t = np.arange(samples) / sr
    refs = np.empty((n_items, 2, samples))
    for item in refs:
        f0, rate = rng.uniform(80, 600), rng.uniform(0.5, 4)
        phase = 2 * np.pi * f0 * (t + 0.002 * np.sin(2 * np.pi * 5 * t))
        harmonics = sum(np.sin(k * phase) / k for k in range(1, 9))
        item[0] = harmonics * (0.2 + np.abs(np.sin(np.pi * rate * t)))
        b, a = scipy.signal.butter(4, sorted(rng.uniform(0.02, 0.9, 2)), "bandpass")
        gaps = np.repeat(rng.uniform(size=samples // 800 + 1) < 0.8, 800)[:samples]
        item[1] = scipy.signal.lfilter(b, a, rng.normal(size=samples)) * gaps
    refs /= refs.std(-1, keepdims=True)
    b, a = scipy.signal.butter(2, 0.3)
    noise = scipy.signal.lfilter(b, a, rng.normal(size=refs.shape))
    noise /= noise.std(-1, keepdims=True)
    leak = rng.uniform(0.1, 0.5, (n_items, 2, 1))
    estimates = refs + leak * refs[:, ::-1] + 0.2 * noise
    return torch.from_numpy(estimates), torch.from_numpy(refs)


def bss_eval_speed(
    seconds: tuple[float, ...] = (1.0, 6.4), n_fast: int = 64, n_mir: int = 6, sr: int = 8000
) -> dict:
    """BSS Eval v3 throughput (items of 2 sources per second) of ``fast`` and ``mir_eval``.

    Both on :func:`separation_like` signals, warmed up, in the same process, with the BLAS
    threads as they are and (when threadpoolctl is installed) with one BLAS thread: mir_eval's
    dense solves are multi-threaded, and on a busy machine extra threads can slow them down.
    ``max_abs_diff_db`` is the largest SDR/SIR/SAR difference on the items both scored.
    """
    import contextlib

    from wsas.evaluate import bss_eval

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only the as-is measurement
        threadpool_limits = None

    def throughput(est, refs, backend):
        started = time.perf_counter()
        scores = bss_eval(est, refs, backend)
        return len(est) / (time.perf_counter() - started), scores

    report = {}
    for length in seconds:
        est, refs = separation_like(max(n_fast, n_mir), int(length * sr), sr)
        row = {}
        for setting in ("", "_one_blas_thread"):
            if setting and threadpool_limits is None:
                continue
            limit = threadpool_limits(1, "blas") if setting else contextlib.nullcontext()
            with limit:
                bss_eval(est[:2], refs[:2], "fast"), bss_eval(est[:1], refs[:1], "mir_eval")
                fast_rate, fast = throughput(est[:n_fast], refs[:n_fast], "fast")
                mir_rate, slow = throughput(est[:n_mir], refs[:n_mir], "mir_eval")
            row[f"fast_items_per_s{setting}"] = round(fast_rate, 2)
            row[f"mir_eval_items_per_s{setting}"] = round(mir_rate, 2)
            row[f"speed_ratio{setting}"] = round(fast_rate / mir_rate, 1)
        diff = max(float(np.abs(fast[k][:n_mir] - slow[k]).max()) for k in ("sdr", "sir", "sar"))
        row["max_abs_diff_db"] = float(f"{diff:.2g}")
        row["mean_sdr_db"] = round(float(slow["sdr"].mean()), 2)
        report[f"{length:g}s"] = row
    return report


def run_bench(preset_name: str = "tiny", long_seconds: float = 600.0) -> dict:
    """All measurements; the caller writes them to results/bench.json."""
    torch.manual_seed(0)
    return {
        "preset": preset_name,
        "inference_10s": inference(preset_name, 10.0),
        f"inference_{int(long_seconds)}s": inference(preset_name, long_seconds),
        "shared_encoder_deep": shared_encoder_speedup(preset_name, "deep"),
        "shared_encoder_late": shared_encoder_speedup(preset_name, "late"),
        **{f"bss_eval_{clip}": row for clip, row in bss_eval_speed().items()},
    }


def table(report: dict) -> str:
    """A plain-text table of the report."""
    lines = [f"wsas bench (preset {report['preset']})"]
    for key, value in report.items():
        if isinstance(value, dict) and key != "provenance":
            lines.append(f"  {key:<22} " + ", ".join(f"{k}={v}" for k, v in value.items()))
    return "\n".join(lines)
