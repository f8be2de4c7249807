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

from wsas.bundle import load_run, save_run
from wsas.errors import WsasError

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
