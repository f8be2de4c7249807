"""Checkpoints: one safetensors file per model, its JSON config in the file's metadata (no
pickle)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from wsas.errors import CheckpointError
from wsas.files import write_file


def save_checkpoint(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], config: dict
) -> Path:
    """Write ``tensors`` and ``config`` (JSON-serialisable) atomically to ``path``."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    metadata = {"wsas_config": json.dumps(config)}
    return write_file(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_config(path: str | os.PathLike) -> dict:
    """The JSON config stored in a checkpoint, without loading its tensors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path}: not a safetensors checkpoint ({str(err).splitlines()[0]})"
        ) from None
    if "wsas_config" not in meta:
        raise CheckpointError(f"{path}: a safetensors file, but not a wsas checkpoint (no config)")
    try:
        config = json.loads(meta["wsas_config"])
    except ValueError:
        raise CheckpointError(f"{path}: its config is not valid JSON") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: its config is not a JSON object")
    return config


def load_checkpoint(
    path: str | os.PathLike, kind: str | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """``(tensors, config)`` of a checkpoint; ``kind`` checks ``config['kind']`` (e.g.
    'separator')."""
    config = read_config(path)
    if kind is not None and config.get("kind") != kind:
        raise CheckpointError(
            f"{path}: a '{config.get('kind')}' checkpoint, expected a '{kind}' one"
        )
    return load_file(str(path)), config
