"""The GPU check: the paper-size model's steps on one GPU, and a short supervised training.

``python -m wsas.lab.gpu [--device cuda] [--out results/gpu] [--minutes 3]`` (``make
gpu-check``), meant to finish in under 8 minutes on one GPU:

1. one training step of every regime at the ``paper`` preset's sizes with cross-attention
   conditioning and the paper's batch, under bf16 autocast, through an untrained TinyCLAP and
   (where ``laion_clap`` imports) LAION-CLAP's architecture with random weights (step speed
   does not depend on weights): step time, examples per second, peak GPU memory;
2. supervised ``tiny`` (its preset's conditioning) trained for ``--minutes`` of wall time, with
   its validation SI-SDR;

and writes ``<out>/<device name>.json``. Without CUDA it falls back to the ``smoke`` preset's
sizes and a few seconds of training, written to a temporary folder unless ``--out`` is given
(what the CPU test runs).
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from wsas.clap import Clap
from wsas.clap.tiny import TinyClap
from wsas.data.datasets import load_embedded
from wsas.data.synth import build_corpus
from wsas.errors import WsasError
from wsas.presets import Preset, get_preset
from wsas.regimes import REGIMES
from wsas.results import write_json
from wsas.train import Trainer

STEPS = 3  # timed steps per regime, after one warm-up step (the CPU fallback: 1)


def _corpus(preset: Preset, root: Path, train: int = 2, val: int = 0) -> Path:
    """``preset``'s corpus with ``train`` training and ``val`` validation clips per class,
    rendered into ``root`` once."""
    if not (root / "metadata.csv").is_file():
        clips = {"clap": 0, "train": train, "val": val, "test": 0}
        build_corpus(replace(preset, clips_per_class=clips), root, progress=False)
    return root


def claps(sample_rate: int, laion: bool = True) -> dict[str, Clap | str]:
    """The critics to time, by name: an untrained TinyCLAP at ``sample_rate`` and (``laion``)
    LAION-CLAP's architecture with random weights, or the reason it is not timed."""
    from wsas.clap.laion import LaionClap

    torch.manual_seed(0)
    out: dict[str, Clap | str] = {"tiny": TinyClap({"sample_rate": sample_rate}).freeze()}
    if not laion:  # the CPU fallback: tests/test_clap.py runs a weak step through it
        out["laion"] = "not timed on CPU"
        return out
    try:
        out["laion"] = LaionClap.random().freeze()
    except WsasError as err:
        out["laion"] = str(err)
    return out


def timed_steps(trainer: Trainer, steps: int = STEPS) -> dict:
    """Mean seconds of ``steps`` training steps (after a warm-up step), examples per second and
    the peak GPU memory (GiB, None on CPU) of the timed steps."""
    cuda = trainer.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else lambda: None

    def step():
        with trainer.autocast():
            loss = trainer.losses()["total"]
        trainer.opt.zero_grad(set_to_none=True)
        loss.backward()
        trainer.opt.step()

    trainer.model.train()
    step()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = (time.perf_counter() - started) / steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    return {
        "step_s": round(seconds, 4),
        "examples_per_s": round(trainer.cfg.batch_size / seconds, 2),
        "peak_gib": None if peak is None else round(peak, 2),
        "bf16": trainer._bf16(),
    }


def regime_steps(
    preset: Preset, root: Path, device: str, batch: int, laion: bool = True, steps: int = STEPS
) -> dict:
    """:func:`timed_steps` of every regime at ``preset``'s sizes with cross-attention, per critic
    (a string where a critic could not be built or a step failed)."""
    train = load_embedded(_corpus(preset, root / "corpus"), "train")
    report = {}
    for name, clap in claps(preset.sr, laion).items():
        if isinstance(clap, str):
            report[name] = clap
            continue
        for mode in REGIMES:
            config = preset.train_config(
                mode, "cross", batch_size=batch, clean_fraction=0.5 if mode == "semi" else 1.0
            )
            try:
                trainer = Trainer(config, clap, root / "run", train, device=device)
                report[f"{name}/{mode}"] = timed_steps(trainer, steps)
            except torch.cuda.OutOfMemoryError as err:
                report[f"{name}/{mode}"] = f"out of memory: {str(err).splitlines()[0]}"
            finally:
                trainer = None
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
    return report


def short_training(preset: Preset, root: Path, device: str, minutes: float) -> dict:
    """Supervised training at ``preset``'s sizes for ``minutes`` of wall time (an untrained
    TinyCLAP names the labels): steps, examples per second and validation SI-SDR."""
    clips = preset.clips_per_class
    corpus = _corpus(preset, root / "corpus", clips["train"], clips["val"])
    train, val = load_embedded(corpus, "train"), load_embedded(corpus, "val")
    torch.manual_seed(0)
    clap = TinyClap({"sample_rate": preset.sr}).freeze()
    config = preset.train_config("supervised", minutes=minutes, val_every=10**9)
    record = Trainer(config, clap, root / "run", train, val, device=device).run(progress=False)
    return {
        "preset": preset.name,
        "minutes": minutes,
        "steps": record["step"],
        "seconds": record["seconds"],
        "examples_per_s": round(record["step"] * config.batch_size / record["seconds"], 1),
        "val_si_sdr": record.get("val_si_sdr"),
    }


def device_name(device: str) -> str:
    """A file-name-safe name of the device (the GPU's model, or ``cpu``)."""
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(device))
    else:
        name = "cpu"
    return re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-").lower()


def run_check(device: str, out: Path | None, minutes: float) -> Path:
    """The whole check on ``device``; returns the JSON file written."""
    cuda = device.startswith("cuda")
    sizes, trained = (get_preset("paper"), get_preset("tiny")) if cuda else (None, None)
    if not cuda:  # the fallback: smoke sizes, seconds
        sizes = trained = get_preset("smoke")
        sizes = replace(sizes, batch_size=2)
        minutes = min(minutes, 0.05)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        timed = STEPS if cuda else 1
        steps = regime_steps(sizes, root / "steps", device, sizes.batch_size, cuda, timed)
        training = short_training(trained, root / "train", device, minutes)
        report = {
            "device": device_name(device),
            "torch": torch.__version__,
            "sizes": sizes.name,
            "batch": sizes.batch_size,
            "conditioning": "cross",
            "timed_steps": timed,
            "steps": steps,
            "training": training,
            "check_seconds": round(time.perf_counter() - started, 1),
        }
        out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="wsas-gpu-"))
        return write_json(out / f"{report['device']}.json", report)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m wsas.lab.gpu", description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="default: results/gpu on CUDA, else a tmp dir")
    parser.add_argument("--minutes", type=float, default=3.0, help="of supervised tiny training")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    cuda_default = Path("results/gpu") if args.device.startswith("cuda") else None
    path = run_check(args.device, args.out or cuda_default, args.minutes)
    print(path)
    return path


if __name__ == "__main__":
    main()
