"""Pretrained separators shipped with wsas, so that separation works before any training.

Each model is a run bundle (``<name>.safetensors``: separator + TinyCLAP, no optimizer) listed in
``cards.json`` with its model card: what it was trained on, how long, its test scores with 95 %
intervals over the test mixtures, its sample rate and what it is not good for.
``wsas models`` prints the cards; ``wsas separate`` uses ``DEFAULT`` unless told otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from wsas.bundle import load_run, save_run
from wsas.errors import WsasError
from wsas.results import write_text
from wsas.stats import mean_ci

FOLDER = Path(__file__).parent
DEFAULT = "weak"  # the paper's method


def cards(folder: Path = FOLDER) -> dict[str, dict]:
    """The model cards, by model name (empty when none is shipped)."""
    path = folder / "cards.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def model_path(name: str, folder: Path = FOLDER) -> Path:
    """The bundle of the shipped model ``name``; unknown names are a one-line error."""
    known = cards(folder)
    if not known:
        raise WsasError("no model is shipped in this version: pass --checkpoint RUN")
    if name not in known:
        raise WsasError(f"unknown model '{name}'; shipped: {', '.join(known)}")
    return folder / known[name]["file"]


def half_copy(run: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Write the best model of ``run`` to ``path`` as it ships: its bundle without optimizer
    state, weights stored as float16 (they load back as float32)."""
    bundle = load_run(run)
    keep = {k: bundle.config[k] for k in ("train", "n_slots", "step", "history")}
    return save_run(path, bundle.model, bundle.clap, keep, half=True)


def publish(
    run: str | os.PathLike, name: str, report: dict, trained_on: str, folder: Path = FOLDER
) -> dict:
    """Ship the best model of ``run`` as ``name``: its :func:`half_copy`, and a card built from
    ``report``, the caller's ``evaluate_run`` result with per-mixture ``items`` (the caller
    should score a ``half_copy`` so that the card describes the weights that ship)."""
    path = half_copy(run, folder / f"{name}.safetensors")
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
    write_text(folder / "cards.json", json.dumps({**cards(folder), name: card}, indent=2) + "\n")
    return card
