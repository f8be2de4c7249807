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
    tensors = load_file(str(path))
    check_tensors(tensors, str(path))
    return tensors, config


def check_tensors(
    tensors: dict[str, torch.Tensor],
    where: str,
    expected: dict[str, torch.Tensor] | None = None,
) -> None:
    """Refuse (one-line CheckpointError naming ``where`` and the weight) a floating-point tensor
    holding NaN or Inf, and, given the ``expected`` state of the model the tensors load into, a
    tensor that is not floating point where that model's is (int32 or bool weights would be
    cast silently) or the other way round."""
    for key, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{where}: weight {key} holds NaN or Inf values")
        want = (expected or {}).get(key)
        if want is not None and value.is_floating_point() != want.is_floating_point():
            kind = "a floating-point" if want.is_floating_point() else f"a {want.dtype}"
            raise CheckpointError(f"{where}: weight {key} is {value.dtype}, expected {kind} tensor")


def _field(config: dict, field: str):
    value = config
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def check_fields(config: dict, rules: dict[str, tuple[int, int]], where: str) -> None:
    """Each dotted ``field`` of ``rules`` present in ``config`` (e.g. ``unet.hop``) must be an
    integer within ``(low, high)`` inclusive, each element of it when it is a list; otherwise a
    one-line CheckpointError naming ``where`` and the field. Absent fields are left to the
    loader (a default, or a "lacks" error)."""
    for field, (low, high) in rules.items():
        value = _field(config, field)
        if value is None:
            continue
        for item in value if isinstance(value, list) and value else [value]:
            if isinstance(item, bool) or not isinstance(item, int) or not low <= item <= high:
                raise CheckpointError(
                    f"{where}: config field {field} is {value!r}, expected an integer "
                    f"from {low} to {high}"
                )
