"""Audio in and out, resampling, STFT helpers and chunked overlap-add.

Conventions: waveforms are float32 torch tensors, ``(S,)`` mono or ``(C, S)`` with channels
first; sample rates are in Hz; spectrograms are ``(..., F, T)`` with ``F = n_fft // 2 + 1``.
Files are read and written with soundfile (libsndfile: wav, flac, ogg, mp3, aiff, ...).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio.functional as AF

from wsas.errors import AudioError, first_line
from wsas.files import write_file

MIN_SR, MAX_SR = 8_000, 192_000
SUBTYPE_BY_FORMAT = {"WAV": "FLOAT", "FLAC": "PCM_24", "OGG": "VORBIS"}


def check_rate(sr: int, where: str = "audio") -> int:
    """Return ``sr`` as an int, or raise AudioError if it lies outside 8-192 kHz."""
    if not MIN_SR <= int(sr) <= MAX_SR:
        raise AudioError(
            f"{where}: sample rate {sr} Hz is outside the supported {MIN_SR}-{MAX_SR} Hz"
        )
    return int(sr)


def as_wave(x, where: str = "audio") -> torch.Tensor:
    """Turn a numpy array or tensor into a float32 tensor; reject empty, NaN or Inf input."""
    wave = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
    if wave.ndim not in (1, 2):
        raise AudioError(
            f"{where}: expected a waveform of shape (S,) or (C, S), got {tuple(wave.shape)}"
        )
    if wave.shape[-1] == 0:
        raise AudioError(f"{where}: zero-length audio")
    if not torch.isfinite(wave).all():
        raise AudioError(f"{where}: waveform contains NaN or Inf samples")
    return wave


def open_audio(path: str | os.PathLike) -> sf.SoundFile:
    """Open an audio file for (streamed) reading; AudioError naming the file if it can't be used."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        reason = first_line(err)
        raise AudioError(f"{path}: unreadable or corrupt audio ({reason})") from None
    if f.frames == 0:
        f.close()
        raise AudioError(f"{path}: zero-length audio")
    check_rate(f.samplerate, str(path))
    return f


def load(
    path: str | os.PathLike,
    sr: int | None = None,
    mono: bool = True,
    max_seconds: float | None = None,
) -> tuple[torch.Tensor, int]:
    """Read an audio file (only its first ``max_seconds`` when given, so memory stays bounded).

    Returns ``(wave, rate)``: ``wave`` is ``(S,)`` when ``mono`` (channels averaged) or ``(C, S)``,
    float32 (float files may exceed [-1, 1]); ``rate`` is ``sr`` when given (the audio is
    resampled to it) else the file's own rate. Raises AudioError naming the file for every
    kind of bad input.
    """
    with open_audio(path) as f:
        frames = -1 if max_seconds is None else max(1, round(max_seconds * f.samplerate))
        try:
            data, file_sr = f.read(frames, dtype="float32", always_2d=True), f.samplerate
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioError(
                f"{path}: unreadable or corrupt audio ({str(err).splitlines()[0]})"
            ) from None
    wave = as_wave(torch.from_numpy(np.ascontiguousarray(data.T)), str(path))
    if mono:
        wave = wave.mean(0)
    if sr is not None and int(sr) != file_sr:
        return resample(wave, file_sr, check_rate(sr, "target rate")), int(sr)
    return wave, int(file_sr)


def resample(wave: torch.Tensor, sr_in: int, sr_out: int) -> torch.Tensor:
    """Resample ``(..., S)`` from ``sr_in`` to ``sr_out`` Hz (windowed sinc, torchaudio)."""
    if sr_in == sr_out:
        return wave
    return AF.resample(wave, int(sr_in), int(sr_out))


def save(path: str | os.PathLike, wave, sr: int) -> Path:
    """Write ``wave`` (``(S,)`` or ``(C, S)``) atomically: a temp file, then a rename.

    The format follows the suffix (.wav float32, .flac 24-bit, .ogg vorbis); a crash never
    leaves a half-written file at ``path``.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").upper()
    if fmt not in sf.available_formats():
        raise AudioError(f"{path}: unknown audio format '{path.suffix}'")
    data = as_wave(wave, str(path)).detach().cpu().numpy()
    data = data.T if data.ndim == 2 else data
    data = np.clip(data, -1, 1) if fmt != "WAV" else data
    subtype = SUBTYPE_BY_FORMAT.get(fmt)
    return write_file(path, lambda tmp: sf.write(tmp, data, int(sr), subtype=subtype, format=fmt))


def stft(wave: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Complex STFT ``(..., S) -> (..., n_fft // 2 + 1, frames)`` with a Hann window, centred.

    Inputs shorter than half a frame (``S <= n_fft // 2``) cannot be reflection-padded; they are
    zero-padded instead (``frames = 1 + S // hop`` either way, so :func:`istft` inverts both).
    """
    shape = wave.shape
    spec = torch.stft(
        wave.reshape(-1, shape[-1]),
        n_fft,
        hop,
        window=torch.hann_window(n_fft, device=wave.device),
        center=True,
        pad_mode="reflect" if shape[-1] > n_fft // 2 else "constant",
        return_complex=True,
    )
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def istft(spec: torch.Tensor, n_fft: int, hop: int, length: int) -> torch.Tensor:
    """Inverse of :func:`stft`: ``(..., F, T) -> (..., length)``."""
    shape = spec.shape
    wave = torch.istft(
        spec.reshape(-1, *shape[-2:]),
        n_fft,
        hop,
        window=torch.hann_window(n_fft, device=spec.device),
        center=True,
        length=length,
    )
    return wave.reshape(*shape[:-2], length)


def log_magnitude(mag: torch.Tensor, floor: float = 1e-4) -> torch.Tensor:
    """Natural-log magnitude with a floor, the separator's input feature."""
    return torch.log(mag.clamp_min(floor))


def loudest_window(wave: torch.Tensor, samples: int, hop: int = 256) -> torch.Tensor:
    """The ``samples``-long window of highest energy of each waveform, ``(..., S) -> (...,
    samples)`` (the whole waveform when it is not longer). Candidate starts are ``hop`` samples
    apart, plus the last window ``S - samples``; the choice is not differentiated, the cropped
    samples are."""
    length = wave.shape[-1]
    if length <= samples:
        return wave
    flat = wave.reshape(-1, length)
    power = flat.detach().pow(2)
    energy = F.avg_pool1d(power.unsqueeze(1), samples, hop).squeeze(1)  # starts 0, hop, ...
    energy = torch.cat([energy, power[:, -samples:].mean(-1, keepdim=True)], dim=-1)
    candidates = torch.arange(energy.shape[-1], device=wave.device) * hop
    candidates[-1] = length - samples
    starts = candidates[energy.argmax(-1, keepdim=True)]  # (N, 1)
    window = flat.gather(1, starts + torch.arange(samples, device=wave.device))
    return window.reshape(*wave.shape[:-1], samples)


CHUNK_SECONDS, OVERLAP_SECONDS = 8.0, 1.0  # inference window of long inputs and its cross-fade


def chunk_spans(n_samples: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` covering ``n_samples`` with chunks of ``chunk`` overlapping by
    ``overlap``."""
    if not 0 <= overlap < chunk:
        raise ValueError(f"overlap ({overlap}) must be in [0, chunk={chunk})")
    spans, start = [], 0
    while True:
        end = min(start + chunk, n_samples)
        spans.append((start, end))
        if end == n_samples:
            return spans
        start += chunk - overlap


def overlap_add(outputs: Iterable[torch.Tensor], overlap: int) -> Iterator[torch.Tensor]:
    """Cross-fade the outputs of consecutive :func:`chunk_spans` chunks and yield the result in
    order.

    ``outputs`` are ``(..., L_i)`` tensors, one per span. Neighbours are cross-faded with
    complementary linear ramps over ``overlap`` samples (they sum to one, so an identity function
    gives back its input exactly). Yielded pieces concatenate along the last axis to the full
    length; only one chunk and one overlap are held at a time, so memory is bounded for any length.
    """
    ramp = torch.arange(1, overlap + 1, dtype=torch.float32) / (overlap + 1)
    pending, tail = None, None
    for out in outputs:
        if pending is not None:  # pending is not the last chunk: fade its end out
            keep = pending.shape[-1] - overlap
            pending[..., keep:] = pending[..., keep:] * (1 - ramp).to(pending)
            yield pending[..., :keep]
            tail = pending[..., keep:]
        pending = out.clone()
        if tail is not None:
            pending[..., :overlap] = pending[..., :overlap] * ramp.to(pending) + tail
    if pending is not None:
        yield pending


def process_in_chunks(
    fn: Callable[[torch.Tensor], torch.Tensor], wave: torch.Tensor, chunk: int, overlap: int
) -> torch.Tensor:
    """Apply ``fn: (..., L) -> (*lead, ..., L)`` to overlapping chunks of ``wave (..., S)``;
    cross-faded output."""
    outputs = (fn(wave[..., a:b]) for a, b in chunk_spans(wave.shape[-1], chunk, overlap))
    return torch.cat(list(overlap_add(outputs, overlap)), dim=-1)
