"""``wsas bench``: speed and memory on this machine, written to ``results/bench.json``.

Measures (untrained weights of the chosen preset: speed does not depend on them):

* inference real-time factor (seconds of compute per second of audio) for a 10 s clip and a
  10 min file streamed from disk, with the peak resident memory of each (fresh subprocess);
* the shared-encoder speed-up on a weak-objective training step: the mixture encoded once
  and the queries batched, against one full separator pass per query;
* BSS Eval throughput of fast_bss_eval against mir_eval on the same signals.
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


def bss_eval_speed(n_items: int = 4, samples: int = 16384) -> dict:
    from wsas.evaluate import bss_eval

    rng = np.random.default_rng(0)
    refs = torch.from_numpy(rng.normal(size=(n_items, 2, samples)))
    est = refs + 0.3 * torch.from_numpy(rng.normal(size=refs.shape))
    fast = _timed(lambda: bss_eval(est, refs, "fast"), 1)
    slow = _timed(lambda: bss_eval(est, refs, "mir_eval"), 1)
    return {
        "items": n_items,
        "fast_bss_eval_s": round(fast, 3),
        "mir_eval_s": round(slow, 3),
        "speed_ratio": round(slow / fast, 1),
    }


def run_bench(preset_name: str = "tiny", long_seconds: float = 600.0) -> dict:
    """All measurements; the caller writes them to results/bench.json."""
    torch.manual_seed(0)
    return {
        "preset": preset_name,
        "inference_10s": inference(preset_name, 10.0),
        f"inference_{int(long_seconds)}s": inference(preset_name, long_seconds),
        "shared_encoder_deep": shared_encoder_speedup(preset_name, "deep"),
        "shared_encoder_late": shared_encoder_speedup(preset_name, "late"),
        "bss_eval": bss_eval_speed(),
    }


def table(report: dict) -> str:
    """A plain-text table of the report."""
    lines = [f"wsas bench (preset {report['preset']})"]
    for key, value in report.items():
        if isinstance(value, dict) and key != "provenance":
            lines.append(f"  {key:<22} " + ", ".join(f"{k}={v}" for k, v in value.items()))
    return "\n".join(lines)
