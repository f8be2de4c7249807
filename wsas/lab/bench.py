"""``wsas bench``: speed and memory on this machine, written to ``results/bench.json``.

Measures (untrained weights of the chosen preset: speed does not depend on them), by section:

* ``steps``: where a training step's time goes, phase by phase (:class:`PhaseClock`), for every
  regime at the preset's and the ``small`` sizes;
* ``shared_encoder``: the separator's forward + backward with 4 queries per mixture, encoded once
  and batched, against one full pass per query (each conditioning, and deep through
  ``torch.compile``);
* ``paper_step``: one step at the ``paper`` preset's sizes: FLOPs, time, peak memory, and the GPU
  time they imply for the paper's schedule;
* ``inference``: real-time factor (seconds of compute per second of audio) for a 10 s clip and
  a 10 min file streamed from disk, with the peak resident memory of each (fresh subprocess);
* ``resample``: the I/O resampler at 44100 and 44101 Hz (no common factor with the model's
  rate), time and peak memory of each and their ratio (:func:`resample_cost`);
* ``bss_eval``: BSS Eval v3 throughput of the ``fast`` back-end against mir_eval on realistic
  separations (1 s and 6.4 s at 8 kHz), and their largest difference in dB;
* on request, the step times of another git revision in the same run (:func:`before_after`)
  and supervised training for fixed wall-clock budgets (:func:`convergence`).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from wsas.errors import WsasError
from wsas.presets import get_preset
from wsas.results import provenance, write_json


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


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def in_fresh_process(worker, *args, what: str, timeout: float = 3600.0) -> dict:
    """Run ``worker(*args, queue)`` in a spawned process, so that its peak memory is its own, and
    return what it puts on ``queue``; a one-line WsasError naming ``what`` as soon as the worker
    dies without answering (e.g. out of memory), or after ``timeout`` seconds."""
    import queue as queues

    ctx = mp.get_context("spawn")
    answer = ctx.Queue()
    proc = ctx.Process(target=worker, args=(*args, answer))
    proc.start()
    deadline = time.monotonic() + timeout
    while proc.is_alive() and time.monotonic() < deadline:
        try:
            result = answer.get(timeout=1.0)
            proc.join()
            return result
        except queues.Empty:
            pass
    try:  # the worker ended or ran out of time: an answer may still be in the pipe
        result = answer.get(timeout=1.0)
    except queues.Empty:
        proc.kill()
        proc.join()
        raise WsasError(f"{what} did not finish (worker exit code {proc.exitcode})") from None
    proc.join()
    return result


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
            "peak_rss_mb": _peak_rss_mb(),
        }
    )


def inference(preset_name: str, seconds: float) -> dict:
    """RTF and peak memory of a streamed file separation, measured in a fresh process."""
    return in_fresh_process(
        _inference_worker, preset_name, seconds, what=f"the {seconds:g} s inference test"
    )


def _resample_worker(preset_name: str, rate: int, queue) -> None:
    """1 s of stereo noise at ``rate``: the I/O resampling round trip to the preset's rate and
    back (two channels down, two stems of two channels up), then a separation by two queries;
    the fastest of repeated runs (the least disturbed by other work on the machine) and the
    peak RSS (and its growth over the process's peak before the round trips)."""
    from wsas.audio import resample
    from wsas.separate import Separator

    model, clap, p = _model(preset_name)
    sep = Separator(
        model, clap, {"sample_rate": p.sr, "train": {"mode": "weak"}}, torch.device("cpu")
    )
    queries = ["a dog barks", "a violin plays"]
    wave = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, (2, rate)).astype(np.float32))
    stems = torch.zeros(2, 2, p.sr)

    def fastest(fn, repeats: int) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return min(times)

    before = _peak_rss_mb()
    round_trip = fastest(lambda: (resample(wave, rate, p.sr), resample(stems, p.sr, rate)), 50)
    after_resample = _peak_rss_mb()
    sep(wave, rate, queries)  # first-call costs (text embedding, allocator, kernels)
    separation = fastest(lambda: sep(wave, rate, queries), 5)
    queue.put(
        {
            "rate": rate,
            "round_trip_ms": round(round_trip * 1e3, 2),
            "round_trip_rss_growth_mb": round(after_resample - before, 1),
            "separate_1s_ms": round(separation * 1e3, 1),
            "peak_rss_mb": _peak_rss_mb(),
        }
    )


def resample_cost(preset_name: str, rates: tuple[int, int] = (44100, 44101)) -> dict:
    """The I/O resampler's cost at a rate that shares a large factor with the model's and at
    one that shares none (44100 against 44101 Hz), each in a fresh process, and their ratios:
    the time of the round trip alone and of a 1 s separation, and the peak memory."""
    rows = {
        f"resample_{rate}": in_fresh_process(
            _resample_worker, preset_name, rate, what=f"the {rate} Hz resampling test"
        )
        for rate in rates
    }
    a, b = (rows[f"resample_{rate}"] for rate in rates)
    rows[f"resample_ratio_{rates[1]}_over_{rates[0]}"] = {
        key: round(b[key] / a[key], 2) for key in ("round_trip_ms", "separate_1s_ms", "peak_rss_mb")
    }
    return rows


def shared_encoder_speedup(
    preset_name: str, conditioning: str, batch: int = 16, queries: int = 4, compile: bool = False
) -> dict:
    """Separator forward + backward with ``queries`` text queries per mixture: the mixture encoded
    once and the queries batched (what training and inference do), against one full pass per
    query, both through ``torch.compile`` with ``compile``. Only the separator is timed: the rest
    of a step does not depend on the batching."""
    model, clap, p = _model(preset_name, conditioning)
    model.train()
    if compile:  # each shape compiles in its warm-up call
        from wsas.train import compile_unet

        compile_unet(model)
    mixture = torch.randn(batch, p.clip_samples) * 0.1
    text = torch.nn.functional.normalize(torch.randn(batch, queries, clap.embed_dim), dim=-1)

    def batched():
        model.masks(mixture, text)[0].sum().backward()

    def per_query():
        sum(model.masks(mixture, text[:, i : i + 1])[0].sum() for i in range(queries)).backward()

    for _ in range(2):  # both paths warm first: the allocator settles per path (batched
        batched()  # warm-up: timed first and cold, it reads slower than after a per-query pass
        per_query()
    t_batched, t_loop = _timed(batched, 3), _timed(per_query, 3)
    return {
        "conditioning": conditioning,
        "compiled": compile,
        "queries_per_example": queries,
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


SECTIONS = ("steps", "shared_encoder", "paper_step", "inference", "bss_eval", "resample")


def convergence_curves(
    preset_name: str,
    minutes: list[float],
    root: str | os.PathLike,
    bf16: bool = False,
    seeds: tuple[int, ...] = (0,),
    tuned: dict | None = None,
) -> dict:
    """Supervised runs on the preset's corpus (rendered into ``root``), queried by the label
    prompts through a full-size TinyCLAP pretrained on that corpus (every grid's critic): the
    waveform SNR loss for each budget in ``minutes`` and, in fp32, the paper's magnitude loss for
    the first budget; with ``bf16``, the SNR runs only, under bf16 autocast (TrainConfig.bf16).
    Each run trains once per seed of ``seeds``, keyed ``<minutes>min_<loss>_s<seed>`` (runs
    made before seeds existed are keyed without the suffix and trained seed 0); ``tuned``
    replaces the preset's ``lr`` and ``batch_size`` or sets ``grid_crop`` (see
    :func:`convergence_section`)."""
    from wsas.clap.pretrain import pretrain
    from wsas.data.synth import build_corpus

    p = get_preset(preset_name)
    corpus, clap = Path(root) / "corpus", Path(root) / "tinyclap.safetensors"
    build_corpus(p, corpus, progress=False)
    pretrain(corpus, clap, steps=p.clap_steps, progress=False, size="full")
    budgets = [(m, "snr") for m in minutes]
    budgets = budgets if bf16 else [(minutes[0], "magnitude"), *budgets]
    runs = {}
    for seed in seeds:
        for m, loss in budgets:  # bf16 False: fp32 on a GPU too
            out = Path(root) / f"{loss}-{m:g}-s{seed}"
            overrides = {"recon_loss": loss, "bf16": bf16, "seed": seed, **(tuned or {})}
            runs[f"{m:g}min_{loss}_s{seed}"] = convergence(
                corpus, clap, out, m, preset_name, **overrides
            )
    return runs


def convergence_section(bf16: bool = False, tuned: dict | None = None) -> str:
    """The results/bench.json section of convergence runs: ``convergence``, ``_bf16`` under bf16
    autocast, then each value of ``tuned`` (other than the preset's: ``wsas bench`` drops those)
    in full, e.g. ``_lr0.004_batch_size8``, a switch by its name (``_grid_crop``), so that runs
    with other settings sit beside the preset's, not over them."""
    named = "".join(f"_{k}" if v is True else f"_{k}{v!r}" for k, v in (tuned or {}).items())
    return "convergence" + "_bf16" * bf16 + named


def run_bench(
    preset_name: str = "tiny",
    long_seconds: float = 600.0,
    sections: list[str] | None = None,
    against: str | None = None,
    minutes: list[float] = (),
    bf16: bool = False,
    seeds: tuple[int, ...] = (0,),
    tuned: dict | None = None,
) -> dict:
    """The measurements of ``sections`` (default :data:`SECTIONS`), plus the step times of git
    revision ``against`` and the supervised convergence runs of ``minutes`` at ``seeds`` when
    given (with ``bf16``: under bf16 autocast; ``tuned``: another ``lr`` or ``batch_size``, or
    ``grid_crop``; in the section :func:`convergence_section` names); the caller writes them to
    results/bench.json."""
    sections = list(SECTIONS) if sections is None else sections
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise WsasError(
            f"unknown bench section(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(SECTIONS)}"
        )
    torch.manual_seed(0)
    report: dict = {"preset": preset_name}
    if "steps" in sections:
        report["steps"] = training_steps((preset_name, "small"))
    if "shared_encoder" in sections:
        for conditioning in ("deep", "late"):
            report[f"shared_encoder_{conditioning}"] = shared_encoder_speedup(
                preset_name, conditioning
            )
        report["shared_encoder_deep_compiled"] = shared_encoder_speedup(
            preset_name, "deep", compile=True
        )
    if "paper_step" in sections:
        report["paper_step"] = paper_step(("supervised", "mix-and-separate", "weak"))
    if "inference" in sections:
        report["inference_10s"] = inference(preset_name, 10.0)
        report[f"inference_{int(long_seconds)}s"] = inference(preset_name, long_seconds)
    if "bss_eval" in sections:
        report.update({f"bss_eval_{clip}": row for clip, row in bss_eval_speed().items()})
    if "resample" in sections:
        report.update(resample_cost(preset_name))
    if against:
        report["before_after"] = before_after(against)
    if minutes:
        with tempfile.TemporaryDirectory() as tmp:
            report[convergence_section(bf16, tuned)] = convergence_curves(
                preset_name, list(minutes), tmp, bf16, seeds, tuned
            )
    return report


def merge_report(earlier: dict, report: dict, now: dict) -> dict:
    """results/bench.json's sections after a bench run: those measured now (``report``, stamped
    ``now``) replace theirs; the rest of ``earlier`` stay, each with the stamp of its own run (a
    file without stamps per section: the last run's, which they are not newer than); a stamp
    names the preset measured. A convergence section keeps its runs at other budgets or seeds
    when they were of the same preset, each run stamped with the bench run that made it, so
    ``--convergence 5`` keeps the 15-minute runs."""
    earlier = dict(earlier)
    now = {**now, "preset": report["preset"]}
    last = {**earlier.pop("provenance", {}), "measured_by_this_run_or_earlier": True}
    stamps = earlier.pop("section_provenance", {})
    stamps = {k: stamps.get(k, last) for k in earlier if k != "preset"}
    merged = dict(report)
    for section in [k for k in report if k.startswith("convergence")]:
        made_for = stamps.get(section, last).get("preset", earlier.get("preset"))
        kept = earlier.get(section, {}) if made_for == report["preset"] else {}
        merged[section] = {
            **{key: {"provenance": stamps.get(section, last), **run} for key, run in kept.items()},
            **{key: {**run, "provenance": now} for key, run in report[section].items()},
        }
    stamps |= {k: now for k in report if k != "preset"}
    return {**earlier, **merged, "section_provenance": stamps}


def table(report: dict, indent: str = "  ") -> str:
    """A plain-text table of the report: one line per measurement, nested sections indented."""
    lines = [f"wsas bench (preset {report['preset']})"] if "preset" in report else []
    for key, value in report.items():
        if not isinstance(value, dict) or key == "provenance":
            continue
        flat = {k: v for k, v in value.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in value.items() if isinstance(v, dict)}
        lines.append(f"{indent}{key:<22} " + ", ".join(f"{k}={v}" for k, v in flat.items()))
        if nested:
            lines.append(table(nested, indent + "  "))
    return "\n".join(line.rstrip() for line in lines if line.strip())


PHASES = (
    "data",  # drawing clips and mixing them (and captions)
    "text",  # text embeddings of queries (cached after the first step)
    "stft",
    "separator_forward",
    "istft",
    "clap_forward",
    "loss",  # the rest of the forward pass: losses, assignments, parsing
    "separator_backward",
    "other_backward",  # CLAP, iSTFT and loss backward
    "optimizer",
)


class PhaseClock:
    """Wall time of a training step's phases, measured by wrapping the trainer's calls.

    The separator's backward runs from the gradient reaching its output to the gradient of its
    first weight (the last one backward computes); the rest of backward is ``other_backward``.
    With two separator passes in a step (``semi``) the interval spans both, and whatever
    backward runs between them counts as the separator's.
    On CUDA each mark synchronises the device, so the phases are real (and the step slower).
    """

    def __init__(self, trainer):
        self.trainer, self.totals = trainer, dict.fromkeys(PHASES, 0.0)
        self.marks: list[float] = []
        model, device = trainer.model, trainer.device
        self.sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
        self._wrap(trainer, "mixture_batch", "data")
        self._wrap(trainer, "clean_batch", "data")
        self._wrap(trainer, "embed", "text")
        self._wrap(trainer, "query", "text")
        self._wrap(model, "spectrogram", "stft")
        self._wrap(model, "to_waves", "istft")
        self._wrap(trainer.clap, "embed_audio", "clap_forward")
        self._wrap(model.unet, "forward", "separator_forward", mark_backward=True)
        first = next(model.unet.parameters())
        first.register_post_accumulate_grad_hook(lambda p: self.marks.append(self._now()))

    def _now(self) -> float:
        self.sync()
        return time.perf_counter()

    def _wrap(self, obj, name: str, phase: str, mark_backward: bool = False) -> None:
        fn = getattr(obj, name)

        def timed(*args, **kwargs):
            started = self._now()
            out = fn(*args, **kwargs)
            self.totals[phase] += self._now() - started
            if mark_backward and out.requires_grad:
                out.register_hook(lambda grad: self.marks.append(self._now()))
            return out

        setattr(obj, name, timed)

    def step(self) -> None:
        """One training step of the trainer's regime, its phases added to ``totals``."""
        tr, inner = self.trainer, sum(self.totals.values())
        started = self._now()
        with tr.autocast():
            loss = tr.losses()["total"]
        forward_end = self._now()
        self.totals["loss"] += forward_end - started - (sum(self.totals.values()) - inner)
        tr.opt.zero_grad(set_to_none=True)
        self.marks = []
        loss.backward()
        backward_end = self._now()
        separator = max(self.marks) - min(self.marks) if len(self.marks) > 1 else 0.0
        self.totals["separator_backward"] += separator
        self.totals["other_backward"] += backward_end - forward_end - separator
        tr.opt.step()
        self.totals["optimizer"] += self._now() - backward_end


def step_breakdown(trainer, steps: int = 3) -> dict:
    """Mean milliseconds per phase of ``steps`` training steps (after one warm-up step)."""
    clock = PhaseClock(trainer)
    trainer.model.train()
    clock.step()
    clock.totals = dict.fromkeys(PHASES, 0.0)
    for _ in range(steps):
        clock.step()
    phases = {k: round(1000 * v / steps, 1) for k, v in clock.totals.items()}
    return {"step_ms": round(sum(phases.values()), 1), **phases}


def training_steps(
    preset_names: tuple[str, ...] = ("tiny", "small"),
    modes: tuple[str, ...] | None = None,
    extra_conditioning: bool = True,
    steps: int = 3,
) -> dict:
    """Per-phase step times of every regime (``modes``, default all) at each preset's sizes, with
    the preset's conditioning, plus (``extra_conditioning``) the weak step with the other one.

    Each preset's corpus is rendered into a temporary folder (seconds); the CLAP is an untrained
    TinyCLAP of the preset's size: speed does not depend on weights.
    """
    from wsas.clap.tiny import SIZES as TINY_SIZES
    from wsas.clap.tiny import TinyClap
    from wsas.data.datasets import load_embedded
    from wsas.data.synth import build_corpus
    from wsas.regimes import REGIMES
    from wsas.train import Trainer

    report = {}
    for name in preset_names:
        p = get_preset(name)
        other = "late" if p.conditioning == "deep" else "deep"
        cells = [(mode, p.conditioning) for mode in modes or REGIMES]
        cells += [("weak", other)] if extra_conditioning else []
        with tempfile.TemporaryDirectory() as tmp:
            build_corpus(p, tmp, progress=False)
            train = load_embedded(tmp, "train")
            for mode, conditioning in cells:
                torch.manual_seed(0)
                clap = TinyClap({"sample_rate": p.sr, **TINY_SIZES[p.critic]}).freeze()
                config = p.train_config(mode, conditioning, clean_fraction=0.5)
                trainer = Trainer(config, clap, Path(tmp) / "run", train, device="cpu")
                key = f"{name}/{mode}-{conditioning}"
                report[key] = {"batch": config.batch_size, **step_breakdown(trainer, steps)}
    return report


def paper_trainer(mode: str, root: str | os.PathLike, batch: int = 2, device: str = "cpu"):
    """A trainer of ``mode`` at the ``paper`` preset's sizes (16 kHz, ~8.2 s clips, STFT
    1022/256, 32-channel 7-level U-Net, its conditioning) on a two-clips-per-class corpus
    rendered into ``root``, with ``batch`` examples per step and an untrained TinyCLAP."""
    from wsas.clap.tiny import TinyClap
    from wsas.data.datasets import load_embedded
    from wsas.data.synth import build_corpus
    from wsas.train import Trainer

    p = get_preset("paper")
    root = Path(root)
    if not (root / "metadata.csv").is_file():
        build_corpus(
            replace(p, clips_per_class={"clap": 0, "train": 2, "val": 0, "test": 0}),
            root,
            progress=False,
        )
    torch.manual_seed(0)
    clap = TinyClap({"sample_rate": p.sr}).freeze()
    config = p.train_config(mode, batch_size=batch, clean_fraction=0.5)
    return Trainer(config, clap, root / "run", load_embedded(root, "train"), device=device)


def step_flops(trainer) -> float:
    """Floating-point operations of one training step (forward and backward), counted by
    ``torch.utils.flop_counter`` (matrix products and convolutions, the bulk of the work)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        trainer.losses()["total"].backward()
    trainer.opt.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def _paper_step_worker(mode: str, batch: int, queue) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = paper_trainer(mode, tmp, batch)
        flops = step_flops(trainer)
        phases = step_breakdown(trainer, steps=1)
    queue.put(
        {
            "batch": batch,
            "gflop_per_example": round(flops / batch / 1e9, 1),
            **phases,
            "peak_rss_mb": _peak_rss_mb(),
        }
    )


def paper_step(modes: tuple[str, ...] = ("supervised", "weak"), batch: int = 2) -> dict:
    """FLOPs, step time and peak memory of one paper-size step per regime, each in a fresh
    process (so the peak is that step's), and the estimate they give of the paper's training
    time on a GPU (:func:`gpu_estimate`)."""
    report = {
        mode: in_fresh_process(_paper_step_worker, mode, batch, what=f"the paper-size {mode} step")
        for mode in modes
    }
    report["gpu_estimate"] = gpu_estimate(report)
    return report


GPU_TFLOPS = (40.0, 200.0)  # assumed sustained bf16 TFLOP/s on narrow convolutions


def gpu_estimate(paper: dict) -> dict:
    """Hours of the paper preset's training (``train_steps`` steps of ``batch_size``) at the
    measured FLOPs per example, for a modern GPU (H100/H200 class: ~990 dense bf16 TFLOP/s at
    peak) sustaining ``GPU_TFLOPS`` on these narrow (32-256 channel) convolutions."""
    p = get_preset("paper")
    hours = {}
    for mode, row in paper.items():
        if mode == "gpu_estimate":
            continue
        flops = row["gflop_per_example"] * 1e9 * p.batch_size * p.train_steps
        hours[mode] = [round(flops / (t * 1e12) / 3600, 1) for t in reversed(GPU_TFLOPS)]
    return {"assumed_tflops": list(GPU_TFLOPS), "hours_range": hours}


_STEP_SNIPPET = """
import contextlib, json, sys, time, torch
tree = sys.argv[5]  # import wsas from here, not from an editable install's finder
editable = [f for f in sys.meta_path if getattr(f, "__module__", "").startswith("__editable")]
sys.meta_path = [f for f in sys.meta_path if f not in editable]
sys.path.insert(0, tree)
import wsas
assert wsas.__file__.startswith(tree), wsas.__file__
from wsas.clap.tiny import TinyClap
from wsas.data.datasets import load_embedded
from wsas.presets import get_preset
from wsas.train import Trainer
corpus, mode, conditioning, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
overrides = json.loads(sys.argv[6])
p = get_preset("tiny")
# the preset's TinyCLAP size, or the row's (older trees have one size, and no Preset.critic)
size = overrides.pop("critic", getattr(p, "critic", "full"))
compiled = {"compile": True} if overrides.pop("compile", False) else {}  # so may Trainer's option
if size != "full":
    from wsas.clap.tiny import SIZES
torch.manual_seed(0)
clap = TinyClap({"sample_rate": p.sr, **(SIZES[size] if size != "full" else {})}).freeze()
config = p.train_config(mode, conditioning, **overrides)
train = load_embedded(corpus, "train")
trainer = Trainer(config, clap, corpus + "/run-" + mode, train, device="cpu", **compiled)
# a training forward pass's context (bf16 autocast when the config asks; older trees: none)
autocast = getattr(trainer, "autocast", contextlib.nullcontext)
def step():
    with autocast():
        loss = trainer.losses()["total"]
    trainer.opt.zero_grad(set_to_none=True)
    loss.backward()
    trainer.opt.step()
for _ in range(3):  # warm-up: the allocator and oneDNN settle over the first steps (and compile)
    step()
started = time.perf_counter()
for _ in range(steps):
    step()
print((time.perf_counter() - started) / steps)
"""


def before_after(
    rev: str,
    cells: tuple[tuple[str, str, dict], ...] = (
        ("weak", "late", {}),
        ("weak", "deep", {}),
        ("supervised", "late", {}),
        ("weak", "late", {"critic_bf16": False}),
        ("weak", "deep", {"critic_bf16": False}),
        ("weak", "late", {"clap_seconds": 1.024}),
        ("weak", "late", {"critic": "lean"}),
        ("weak", "deep", {"critic": "lean"}),
        ("weak", "deep", {"compile": True}),
        ("weak", "deep", {"critic": "lean", "compile": True}),
        ("weak", "late", {"bf16": True}),
        ("weak", "deep", {"bf16": True}),
        ("supervised", "late", {"bf16": True}),
        ("weak", "late", {"critic": "lean", "bf16": True}),
    ),
    steps: int = 4,
    rounds: int = 2,
) -> dict:
    """Seconds per training step (tiny preset and its TinyCLAP size, batch 16, 2-source mixtures)
    of the code at git revision ``rev`` and of this tree, in one run: each measurement in a fresh
    process on the same corpus, old and new alternating ``rounds`` times (the faster round of
    each is kept, so a passing load spike does not decide). A cell's overrides (``TrainConfig``
    fields, e.g. ``bf16``, ``critic``: a TinyCLAP size, and ``compile``: Trainer's option,
    compiling in the warm-up steps) apply to this tree only (options the old code may lack), and
    name the row. Needs a git checkout of wsas."""
    import subprocess
    import sys

    from wsas.data.synth import build_corpus

    repo = Path(__file__).resolve().parents[2]
    found = subprocess.run(
        ["git", "rev-parse", "--short", f"{rev}^{{commit}}"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        raise WsasError(f"--against {rev}: not a git revision of {repo}")
    commit = found.stdout.strip()
    report = {"before": commit, "after": "this tree"}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        archive = subprocess.run(
            ["git", "archive", commit, "wsas"], cwd=repo, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        corpus = Path(tmp) / "corpus"
        build_corpus(get_preset("tiny"), corpus, progress=False)
        for mode, conditioning, overrides in cells:
            times: dict[str, list[float]] = {"before_s": [], "after_s": []}
            for _ in range(rounds):
                for key, tree, options in (("before_s", old, {}), ("after_s", repo, overrides)):
                    args = [str(corpus), mode, conditioning, str(steps), str(tree)]
                    args.append(json.dumps(options))
                    out = subprocess.run(
                        [sys.executable, "-c", _STEP_SNIPPET, *args],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                    times[key].append(float(out.split()[-1]))
            before, after = min(times["before_s"]), min(times["after_s"])
            options = "".join(f"-{k}={v}" for k, v in overrides.items())
            report[f"{mode}-{conditioning}{options}"] = {
                "before_s": round(before, 3),
                "after_s": round(after, 3),
                "speedup": round(before / after, 2),
            }
    return report


def convergence(
    corpus: str | os.PathLike,
    clap_checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    minutes: float,
    preset_name: str = "tiny",
    points: int = 10,
    **overrides,
) -> dict:
    """Supervised training on ``corpus`` for ``minutes`` of wall time (``TrainConfig.minutes``:
    the learning-rate schedule follows the time trained), the label prompts embedded by the
    TinyCLAP of ``clap_checkpoint``: the validation SI-SDR against seconds (about ``points``
    times) and the test scores of the best model.

    The validation interval in steps comes from timing 10 steps and one validation first (the
    budget holds ``points + 1`` validations); ``overrides`` are :class:`TrainConfig` fields
    (e.g. ``recon_loss="snr"``).
    """
    from wsas.clap import load_clap
    from wsas.data.datasets import load_embedded
    from wsas.evaluate import evaluate_run
    from wsas.train import Trainer

    p = get_preset(preset_name)
    clap = load_clap("tiny", clap_checkpoint)
    train, val = load_embedded(corpus, "train"), load_embedded(corpus, "val")
    config = p.train_config("supervised", minutes=minutes, **overrides)
    probe = Trainer(config, clap, Path(out) / "probe", train, val)
    seconds_per_step = step_breakdown(probe, steps=10)["step_ms"] / 1000
    started = time.perf_counter()
    probe.validate()
    checks = (points + 1) * (time.perf_counter() - started)
    expected_steps = (minutes * 60 - checks) / seconds_per_step
    config = replace(config, val_every=max(1, round(expected_steps / points)))  # the probe's
    trainer = Trainer(config, clap, Path(out) / "run", train, val)
    started = time.perf_counter()
    trainer.run(progress=False)
    seconds = time.perf_counter() - started
    report = evaluate_run(Path(out) / "run", corpus, p.test_mixtures)
    return {
        "minutes": minutes,
        "overrides": overrides,
        "steps": trainer.step,
        "train_seconds": round(seconds, 1),
        "curve": [[h["seconds"], round(h["val_si_sdr"], 2)] for h in trainer.history],
        "test_sdr_db": round(report["sdr"], 2),
        "test_si_sdr_db": round(report["si_sdr"], 2),
    }


def bench_command(
    preset: str,
    only: str | None = None,
    against: str | None = None,
    convergence: str | None = None,
    bf16: bool = False,
    seeds: list[int] | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    grid_crop: bool = False,
    long_seconds: float = 600.0,
    out: str = "results/bench.json",
    debug: bool = False,
) -> str:
    """``wsas bench``: check the options, run the sections, merge the report into ``out``
    (sections not run keep their earlier numbers) and return its table."""
    sections = None if only is None else [s for s in only.split(",") if s]
    try:
        minutes = [float(m) for m in convergence.split(",")] if convergence else []
        if not all(math.isfinite(m) and m > 0 for m in minutes):
            raise ValueError
    except ValueError:
        raise WsasError(f"--convergence {convergence!r}: give minutes like 5,15") from None
    given = {"bf16": bf16, "grid_crop": grid_crop, "seeds": seeds is not None}
    given |= {"lr": lr is not None, "batch_size": batch_size is not None}
    for flag, asked in given.items():
        if asked and not minutes:
            raise WsasError(
                f"--{flag.replace('_', '-')} applies to the convergence runs: give --convergence "
                "MINUTES"
            )
    chosen = get_preset(preset)
    asked = {"lr": lr, "batch_size": batch_size}
    tuned = {k: v for k, v in asked.items() if v not in (None, getattr(chosen, k))}
    for flag, value in tuned.items():
        if not (math.isfinite(value) and value > 0):
            raise WsasError(f"--{flag.replace('_', '-')} must be positive, got {value:g}")
    tuned |= {"grid_crop": True} if grid_crop else {}
    seeds = tuple(dict.fromkeys(seeds or (0,)))  # each seed once
    report = run_bench(preset, long_seconds, sections, against, minutes, bf16, seeds, tuned)
    earlier = json.loads(Path(out).read_text()) if Path(out).is_file() else {}
    write_json(out, merge_report(earlier, report, provenance()))
    return table(report)
