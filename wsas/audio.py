"""Audio in and out, resampling, STFT helpers and chunked overlap-add.

Conventions: waveforms are float32 torch tensors, ``(S,)`` mono or ``(C, S)`` with channels
first; sample rates are in Hz; spectrograms are ``(..., F, T)`` with ``F = n_fft // 2 + 1``.
Files are read and written with soundfile (libsndfile: wav, flac, ogg, mp3, aiff, ...).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
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


def read_block(f: sf.SoundFile, path: str | os.PathLike, start: int, frames: int) -> torch.Tensor:
    """Frames ``[start, start + frames)`` of the open file ``f`` as a float32 ``(C, frames)``
    tensor; an AudioError naming ``path`` and the time (s) when the file ends early (truncated
    while being read), cannot be read there, or holds NaN or Inf samples."""
    sr = f.samplerate
    try:
        f.seek(start)
        data = f.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(
            f"{path}: unreadable or truncated near {start / sr:.1f} s ({first_line(err)})"
        ) from None
    if len(data) < frames:
        raise AudioError(
            f"{path}: ends at {(start + len(data)) / sr:.1f} s of the {f.frames / sr:.1f} s its "
            "header announced (truncated while being read?)"
        )
    block = torch.from_numpy(np.ascontiguousarray(data.T))
    bad = (~torch.isfinite(block)).any(0).nonzero()
    if len(bad):
        raise AudioError(f"{path}: NaN or Inf samples near {(start + int(bad[0])) / sr:.1f} s")
    return block


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
        frames = f.frames if max_seconds is None else max(1, round(max_seconds * f.samplerate))
        wave, file_sr = read_block(f, path, 0, min(frames, f.frames)), f.samplerate
    if mono:
        wave = wave.mean(0)
    if sr is not None and int(sr) != file_sr:
        return resample(wave, file_sr, check_rate(sr, "target rate")), int(sr)
    return wave, int(file_sr)


SINC_WIDTH, SINC_ROLLOFF = 6, 0.99  # torchaudio's defaults: zero crossings per side, cutoff
MAX_SINC_KERNEL = 1 << 20  # elements of the differentiable path's kernel (4 MiB of float32)


def resampled_length(samples: int, sr_in: int, sr_out: int) -> int:
    """Samples of ``samples`` resampled from ``sr_in`` to ``sr_out``: ``ceil(S * out / in)``."""
    return -(-samples * int(sr_out) // int(sr_in))


def resample(wave: torch.Tensor, sr_in: int, sr_out: int) -> torch.Tensor:
    """Resample ``(..., S)`` from ``sr_in`` to ``sr_out`` Hz for audio in and out (not
    differentiable): ``(..., resampled_length(S))``, same dtype and device.

    soxr's polyphase filter (HQ: 20-bit precision, 95 % of the band kept): its filter and its
    work per sample are bounded whatever the rates' common factor (44101 Hz costs about what
    44100 Hz does; ``wsas bench --only resample`` measures both), unlike a windowed sinc whose
    kernel has one row per output phase. Runs on the CPU (a GPU tensor makes a round trip).
    """
    if int(sr_in) == int(sr_out):
        return wave
    length = resampled_length(wave.shape[-1], sr_in, sr_out)
    flat = wave.detach().reshape(-1, wave.shape[-1]).cpu()
    flat = flat.double() if flat.dtype == torch.float64 else flat.float()
    data = np.ascontiguousarray(flat.numpy().T)  # soxr wants (frames, channels)
    out = soxr.resample(data, int(sr_in), int(sr_out), quality="HQ")[:length]
    out = torch.from_numpy(np.ascontiguousarray(out.T))
    out = F.pad(out, (0, length - out.shape[-1]))  # soxr rounds: a 1-sample input gives none
    return out.reshape(*wave.shape[:-1], length).to(wave.device, wave.dtype)


def sinc_kernel_size(sr_in: int, sr_out: int) -> int:
    """Elements of the windowed-sinc kernel torchaudio builds for ``sr_in -> sr_out``: one row
    per output phase (``sr_out / gcd``), each as long as ``sr_in / gcd`` plus the filter."""
    g = math.gcd(int(sr_in), int(sr_out))
    orig, new = int(sr_in) // g, int(sr_out) // g
    width = math.ceil(SINC_WIDTH * orig / (min(orig, new) * SINC_ROLLOFF))
    return new * (orig + 2 * width)


def resample_differentiable(wave: torch.Tensor, sr_in: int, sr_out: int) -> torch.Tensor:
    """Resample ``(..., S)`` inside a training graph (a CLAP's input): torchaudio's windowed
    sinc, differentiable and on ``wave``'s device, ``(..., resampled_length(S))``.

    Its kernel grows with the rates' reduced ratio, so it runs only while
    :func:`sinc_kernel_size` is at most ``MAX_SINC_KERNEL`` (every common pair of rates, e.g.
    44.1 -> 48 kHz); other pairs go through :func:`resample` when no gradient is needed and are
    an AudioError when one is.
    """
    if int(sr_in) == int(sr_out):
        return wave
    if sinc_kernel_size(sr_in, sr_out) <= MAX_SINC_KERNEL:
        return AF.resample(wave, int(sr_in), int(sr_out))
    if wave.requires_grad and torch.is_grad_enabled():
        raise AudioError(
            f"resampling {sr_in} -> {sr_out} Hz in a training graph: the rates share too small "
            "a factor for a differentiable resampler (resample the data first)"
        )
    return resample(wave, sr_in, sr_out)


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
