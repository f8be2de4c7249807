"""Figures for the book and the result files (matplotlib, no state), and the book's tables of
audio players (HTML)."""

from __future__ import annotations

import base64
import html
import io

import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf
import torch

from wsas.audio import stft
from wsas.models.unet import UNetConfig


def _spectrogram_db(wave, stft_config: UNetConfig | None) -> torch.Tensor:
    """``wave (S,)`` -> log magnitude ``(F, T)`` in dB with the separator's STFT settings."""
    c = stft_config or UNetConfig()
    return 20 * torch.log10(
        stft(torch.as_tensor(wave).float(), c.n_fft, c.hop).abs().clamp_min(1e-5)
    )


def spectrogram(
    ax,
    wave: torch.Tensor,
    sr: int,
    title: str = "",
    stft_config: UNetConfig | None = None,
    top_db: float | None = None,
) -> None:
    """Log-magnitude spectrogram (dB) of a mono ``wave (S,)`` on ``ax`` with the separator's STFT
    settings (``stft_config``, default the U-Net's defaults); time in s, frequency in kHz. The
    colours span the 80 dB below ``top_db`` (default: this wave's own peak)."""
    db = _spectrogram_db(wave, stft_config)
    top = float(db.max()) if top_db is None else top_db
    ax.imshow(
        db.numpy(),
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=top - 80,
        vmax=top,
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


def spectrogram_grid(
    rows: dict[str, dict[str, torch.Tensor]],
    sr: int,
    stft_config: UNetConfig | None = None,
    cell: tuple[float, float] = (3.0, 1.9),
):
    """Spectrograms of mono waves ``(S,)`` in a grid: one row per entry of ``rows``, one column
    per key met in any row (in order of first appearance), a missing cell left blank; panels are
    titled "row: column" (just "column" in a row named ""). Every panel shares one dB scale
    (the loudest panel's peak), so a quieter wave looks darker. ``cell`` is one panel's
    (width, height) in inches. Returns the figure."""
    columns = list(dict.fromkeys(c for row in rows.values() for c in row))
    top = max(
        float(_spectrogram_db(w, stft_config).max()) for r in rows.values() for w in r.values()
    )
    fig, axes = plt.subplots(
        len(rows),
        len(columns),
        figsize=(cell[0] * len(columns), cell[1] * len(rows)),
        squeeze=False,
    )
    for ax_row, (name, row) in zip(axes, rows.items()):
        for ax, column in zip(ax_row, columns):
            if column in row:
                title = f"{name}: {column}" if name else column
                spectrogram(ax, row[column], sr, title, stft_config, top)
            else:
                ax.axis("off")
    fig.tight_layout()
    return fig


def audio_tag(wave, sr: int, gain: float = 1.0) -> str:
    """An HTML ``<audio>`` player holding ``gain x wave`` (mono ``(S,)``, clipped to [-1, 1]) as
    a 16-bit WAV data URI, so the page plays it offline."""
    buffer = io.BytesIO()
    samples = np.clip(gain * np.asarray(wave, dtype=np.float32), -1, 1)
    sf.write(buffer, samples, sr, format="WAV", subtype="PCM_16")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<audio controls preload="none" src="data:audio/wav;base64,{data}"></audio>'


def players_table(rows: dict[str, dict[str, object]], sr: int, peak: float = 0.99) -> str:
    """An HTML table of audio players: one row per entry of ``rows``, one column per key met in
    any row (first-appearance order). A cell is a mono wave ``(S,)`` or ``(wave, note)`` with a
    note printed under the player. Every player shares one gain (at most 1, so that the loudest
    wave peaks at ``peak``): loudness is comparable across the table and nothing clips."""
    cells = {
        name: {c: v if isinstance(v, tuple) else (v, "") for c, v in row.items()}
        for name, row in rows.items()
    }
    columns = list(dict.fromkeys(c for row in cells.values() for c in row))
    loudest = max(float(np.abs(np.asarray(w)).max()) for r in cells.values() for w, _ in r.values())
    gain = min(1.0, peak / max(loudest, 1e-12))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["", *columns])
    body = ""
    for name, row in cells.items():
        tds = "".join(
            f"<td>{audio_tag(row[c][0], sr, gain)}<br><small>{html.escape(row[c][1])}</small></td>"
            if c in row
            else "<td></td>"
            for c in columns
        )
        body += f"<tr><th>{html.escape(name)}</th>{tds}</tr>"
    return f"<table><tr>{head}</tr>{body}</table>"


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
