"""Figures for the book and the result files (matplotlib, no state)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from wsas.audio import stft
from wsas.models.unet import UNetConfig


def spectrogram(
    ax, wave: torch.Tensor, sr: int, title: str = "", stft_config: UNetConfig | None = None
) -> None:
    """Log-magnitude spectrogram (dB) of a mono ``wave (S,)`` on ``ax`` with the separator's STFT
    settings (``stft_config``, default the U-Net's defaults); time in s, frequency in kHz."""
    c = stft_config or UNetConfig()
    mag = stft(torch.as_tensor(wave).float(), c.n_fft, c.hop).abs()
    db = 20 * torch.log10(mag.clamp_min(1e-5))
    ax.imshow(
        db.numpy(),
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=float(db.max()) - 80,
        extent=(0, wave.shape[-1] / sr, 0, sr / 2000),
    )
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("kHz")


def spectrogram_row(waves: dict, sr: int, height: float = 2.4):
    """One spectrogram per named wave, side by side; returns the figure."""
    fig, axes = plt.subplots(1, len(waves), figsize=(3.2 * len(waves), height), squeeze=False)
    for ax, (name, wave) in zip(axes[0], waves.items()):
        spectrogram(ax, wave, sr, name)
    fig.tight_layout()
    return fig


def similarity_matrix(
    ax, sims: np.ndarray, rows: list[str], cols: list[str], title: str = ""
) -> None:
    """A labelled heat map of a similarity matrix ``(len(rows), len(cols))``."""
    ax.imshow(sims, cmap="viridis")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    for (i, j), v in np.ndenumerate(sims):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="w")
    ax.set_title(title, fontsize=9)
