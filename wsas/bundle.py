"""The run bundle: the only owner of the separator checkpoint format.

One safetensors file holds the separator (``model.*``), its CLAP when the backend's weights travel
(``clap.*``), the optimizer state (``opt.<param>.<name>``) and the torch RNG (``rng.torch``); its
JSON config (in the file's metadata) holds the U-Net, the sample rate, the training config, the
CLAP's backend, checkpoint and config, and the trainer's progress. No pickle anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from wsas.audio import MAX_SR, MIN_SR
from wsas.checkpoint import check_fields, check_tensors, load_checkpoint, save_checkpoint
from wsas.clap import BACKENDS, Clap, clap_class, load_clap
from wsas.clap.tiny import CONFIG_RULES as TINY_CLAP_RULES
from wsas.errors import CheckpointError, first_line
from wsas.models.separator import MaskSeparator
from wsas.models.unet import UNetConfig

KIND = "separator"
FILENAME = "checkpoint.safetensors"  # the last state, resumable (optimizer and RNG included)
BEST = "best.safetensors"  # the model with the best validation score (evaluation's choice)
# what a separator's config may hold: sample rates the audio code accepts, and sizes far beyond
# any trained model's but small enough that building the model cannot exhaust memory
CONFIG_RULES = {
    "sample_rate": (MIN_SR, MAX_SR),
    "unet.n_fft": (2, 1 << 14),
    "unet.hop": (1, 1 << 14),
    "unet.channels": (1, 1024),
    "unet.levels": (1, 12),
    "unet.convs_per_block": (1, 16),
    "unet.decoder_convs": (1, 16),
    "unet.cond_dim": (1, 1 << 13),
    "unet.late_channels": (1, 1024),
    **{f"clap.config.{field}": bounds for field, bounds in TINY_CLAP_RULES.items()},
}


@dataclass
class Bundle:
    """A loaded run: the separator (eval mode), its frozen CLAP and the run's config."""

    model: MaskSeparator
    clap: Clap
    config: dict


def checkpoint_of(run: str | os.PathLike) -> Path:
    """The model a run folder stands for: its best-validation checkpoint when it has one, else
    its last one; a file is itself."""
    run = Path(run)
    if not run.is_dir():
        return run
    return run / BEST if (run / BEST).is_file() else run / FILENAME


def save_run(
    path: str | os.PathLike,
    model: MaskSeparator,
    clap: Clap,
    config: dict,
    optimizer: torch.optim.Optimizer | None = None,
    half: bool = False,
) -> Path:
    """Write a bundle atomically; ``config`` holds the run's own entries (training config,
    progress...), to which the separator's and the CLAP's descriptions are added. ``half``
    stores the weights as float16 (half the size; they load back as float32)."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if clap.weights_travel:
        tensors.update({f"clap.{k}": v for k, v in clap.state_dict().items()})
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    if optimizer is not None:
        for i, state in optimizer.state_dict()["state"].items():
            tensors.update({f"opt.{i}.{k}": torch.as_tensor(v) for k, v in state.items()})
        tensors["rng.torch"] = torch.get_rng_state()
    clap_info = {
        "backend": clap.backend,
        "checkpoint": clap.checkpoint,
        "config": getattr(clap, "config", None) if clap.weights_travel else None,
    }
    full = {
        "kind": KIND,
        "unet": model.config.to_dict(),
        "sample_rate": model.sample_rate,
        **config,
        "clap": clap_info,
    }
    return save_checkpoint(path, tensors, full)


def _part(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_model(tensors: dict[str, torch.Tensor], config: dict, where: str) -> MaskSeparator:
    """The separator stored in a bundle's ``tensors``; a mismatch is a one-line CheckpointError."""
    try:
        model = MaskSeparator(UNetConfig(**config["unet"]), config["sample_rate"])
        state = _part(tensors, "model.")
        check_tensors(state, f"{where}: model", model.state_dict())
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        first = first_line(err)
        raise CheckpointError(
            f"{where}: does not match this version's separator ({first})"
        ) from None
    return model


def load_run(run: str | os.PathLike, device: str | torch.device = "cpu") -> Bundle:
    """The separator (eval mode) and frozen CLAP of a run folder or checkpoint file."""
    path = checkpoint_of(run)
    tensors, config = load_checkpoint(path, kind=KIND)
    tensors = {k: v.float() if v.dtype == torch.float16 else v for k, v in tensors.items()}
    missing = [k for k in ("unet", "sample_rate", "clap", "train") if k not in config]
    if missing:
        raise CheckpointError(f"{path}: its config lacks {', '.join(missing)}")
    if not isinstance(config["train"], dict) or "mode" not in config["train"]:
        raise CheckpointError(f"{path}: its config lacks train.mode")
    check_fields(config, CONFIG_RULES, str(path))
    info = config["clap"] if isinstance(config["clap"], dict) else {}
    name = info.get("backend")
    if not isinstance(name, str) or name not in BACKENDS:
        raise CheckpointError(
            f"{path}: config field clap.backend is {name!r}, expected one of "
            f"{', '.join(map(repr, BACKENDS))}"
        )
    model = load_model(tensors, config, str(path)).to(device).eval()
    backend = clap_class(name)
    if backend.weights_travel:
        state = _part(tensors, "clap.")
        if not state or not info.get("config"):
            raise CheckpointError(f"{path}: the {backend.backend} CLAP weights are missing")
        try:
            clap = backend.from_state(info["config"], state)
            check_tensors(state, f"{path}: clap", clap.state_dict())
            clap = clap.to(device).freeze()
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            reason = first_line(err)
            raise CheckpointError(f"{path}: its CLAP does not load ({reason})") from None
        clap.checkpoint = info.get("checkpoint")
    else:
        clap = load_clap(backend.backend, info.get("checkpoint"), device)
    return Bundle(model, clap, config)


def restore_training(
    path: str | os.PathLike, model: MaskSeparator, optimizer: torch.optim.Optimizer
) -> dict:
    """Load a bundle's separator, optimizer state and torch RNG into a live run; returns its
    config."""
    tensors, config = load_checkpoint(path, kind=KIND)
    model.load_state_dict(_part(tensors, "model."))
    opt_state = optimizer.state_dict()
    for key, value in _part(tensors, "opt.").items():
        i, name = key.split(".", 1)
        opt_state["state"].setdefault(int(i), {})[name] = value
    optimizer.load_state_dict(opt_state)
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    return config
