"""Shipping models: train the shipped separators again and write their cards.

A card holds what a model was trained on and for how long, and its test scores with 95 %
intervals over the test mixtures, measured on the float16 weights that ship.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from wsas import pretrained
from wsas.bundle import load_run
from wsas.data.datasets import load_embedded
from wsas.errors import WsasError
from wsas.evaluate import evaluate_run
from wsas.lab.grid import Cell
from wsas.lab.reproduce import prepare, train_cell
from wsas.lab.stats import mean_ci
from wsas.presets import Preset
from wsas.results import write_text


def publish_card(
    run: str | os.PathLike,
    name: str,
    report: dict,
    trained_on: str,
    folder: Path = pretrained.FOLDER,
) -> dict:
    """Ship the best model of ``run`` as ``name``: its :func:`half_copy`, and a card built from
    ``report``, the caller's ``evaluate_run`` result with per-mixture ``items`` (the caller
    should score a ``half_copy`` so that the card describes the weights that ship)."""
    path = pretrained.half_copy(run, folder / f"{name}.safetensors")
    bundle = load_run(path)
    train = bundle.config["train"]

    def interval(metric: str) -> dict:
        mean, low, high = mean_ci(np.array(report["items"][metric], dtype=float))
        return {"mean": round(mean, 2), "ci95": [round(low, 2), round(high, 2)]}

    card = {
        "file": path.name,
        "mode": train["mode"],
        "conditioning": train["conditioning"],
        "sources_per_training_mixture": train["sources"],
        "trained_on": trained_on,
        "steps": train["steps"],
        "best_step": bundle.config["step"],
        "sample_rate": bundle.config["sample_rate"],
        "test_pairs": report["pairs"],
        "test_clip_seconds": report.get("test_clip_seconds"),
        "test_si_sdr_db": interval("si_sdr"),
        "test_sdr_db": interval("sdr"),
        # an estimate's energy over its reference's (0 is right; SI-SDR and SDR forgive it)
        "test_level_error_db": round(report["level_db"], 2),
        "size_mb": round(path.stat().st_size / 2**20, 2),
        "not_for": "real recordings unlike the embedded General MIDI corpus (speech, field "
        "recordings, music production): it has only heard 24 synthesised sound classes",
    }
    shipped = {**pretrained.cards(folder), name: card}
    write_text(folder / "cards.json", json.dumps(shipped, indent=2) + "\n")
    return card


SHIPPED = ("supervised", "mix-and-separate", "weak")  # wsas/pretrained's models, by regime
_SAW = {  # what each shipped regime learned from, for its card
    "supervised": "clean sources with their labels",
    "mix-and-separate": "mixtures of 2-source mixtures and their captions only",
    "weak": "mixtures of 2-source mixtures and their captions only",
}


def remake_shipped(
    preset: Preset,
    work: str | os.PathLike,
    modes: tuple[str, ...] = SHIPPED,
    folder: Path = pretrained.FOLDER,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, dict]:
    """Train the shipped models again from scratch and publish them in ``folder``: each regime of
    ``modes`` on ``preset``'s corpus and critic, deep conditioning, its budget, ``seed``; the
    float16 copy of each best-validation model is scored on the preset's fixed test mixtures
    (the weights that ship) for its card. Returns the cards by name."""
    if unknown := [m for m in modes if m not in _SAW]:
        raise WsasError(f"cannot ship {', '.join(unknown)}; shipped regimes: {', '.join(_SAW)}")
    corpus, clap_ckpt = prepare(preset, work, progress=progress)
    runs = Path(work) / preset.name / "shipped"
    per_class = preset.clips_per_class["train"]
    classes = len(load_embedded(corpus, "test").class_names)
    made = {}
    for mode in modes:
        cell = Cell(mode, conditioning="deep", seed=seed)
        run, _ = train_cell(cell, preset, corpus, clap_ckpt, runs, progress, resume=False)
        half = pretrained.half_copy(run, runs / f"{cell.name}-float16.safetensors")
        report = evaluate_run(half, corpus, preset.test_mixtures)
        trained_on = (
            f"the {preset.name} embedded corpus ({classes} General MIDI classes, "
            f"{preset.sr / 1000:g} kHz, {preset.clip_seconds:g} s clips, {per_class} training "
            f"clips per class; TinyCLAP pretrained on its own split), deep conditioning, "
            f"{preset.train_steps} steps, seed {seed}; it saw {_SAW[mode]}"
        )
        made[mode] = publish_card(half, mode, report, trained_on, folder)  # what was scored
    return made
