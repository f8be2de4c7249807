import math

import numpy as np
import pytest
import soundfile as sf
import torch

from wsas.audio import (
    as_wave,
    chunk_spans,
    istft,
    load,
    log_magnitude,
    loudest_window,
    process_in_chunks,
    resample,
    save,
    stft,
)
from wsas.errors import AudioError


def tone(sr, seconds=0.5, freq=440.0, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    wave = 0.5 * np.sin(2 * math.pi * freq * t)
    return np.stack([wave * (c + 1) / channels for c in range(channels)], axis=1).astype(np.float32)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT"])
def test_load_reads_integer_and_float_wav(tmp_path, subtype):
    path = tmp_path / "x.wav"
    sf.write(path, tone(16000), 16000, subtype=subtype)
    wave, sr = load(path)
    assert sr == 16000 and wave.shape == (8000,) and wave.dtype == torch.float32
    assert torch.allclose(wave, torch.from_numpy(tone(16000)[:, 0]), atol=1e-3)


@pytest.mark.parametrize("suffix", [".flac", ".ogg"])
def test_load_reads_compressed_formats(tmp_path, suffix):
    path = tmp_path / f"x{suffix}"
    sf.write(path, tone(16000), 16000)
    wave, sr = load(path)
    assert sr == 16000 and abs(wave.shape[0] - 8000) < 10


def test_load_51_surround_mono_by_mean_or_kept(tmp_path):
    path = tmp_path / "surround.wav"
    data = tone(48000, channels=6)
    sf.write(path, data, 48000)
    mono, _ = load(path)
    kept, _ = load(path, mono=False)
    assert kept.shape == (6, 24000)
    assert torch.allclose(mono, torch.from_numpy(data.mean(1)), atol=1e-4)


@pytest.mark.parametrize("file_sr", [8000, 96000])
def test_load_resamples_any_rate(tmp_path, file_sr):
    path = tmp_path / "x.wav"
    sf.write(path, tone(file_sr, freq=1000.0), file_sr)
    wave, sr = load(path, sr=16000)
    assert sr == 16000 and abs(wave.shape[0] - 8000) <= 1
    spectrum = np.abs(np.fft.rfft(wave.numpy()))
    assert abs(np.argmax(spectrum) * 16000 / len(wave) - 1000) < 5


def test_missing_file_is_named(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load(tmp_path / "nope.wav")


def test_empty_file_is_rejected(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match="empty file"):
        load(path)


def test_corrupt_file_is_rejected(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 10)
    with pytest.raises(AudioError, match="corrupt.wav: unreadable or corrupt"):
        load(path)


def test_zero_length_audio_is_rejected(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros((0, 1), dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="zero-length"):
        load(path)


def test_nan_samples_are_rejected(tmp_path):
    path = tmp_path / "nan.wav"
    data = tone(16000)
    data[100] = np.nan
    sf.write(path, data, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load(path)


def test_rate_out_of_range_is_rejected(tmp_path):
    path = tmp_path / "low.wav"
    sf.write(path, tone(4000), 4000)
    with pytest.raises(AudioError, match="outside the supported"):
        load(path)


def test_as_wave_rejects_bad_shapes():
    with pytest.raises(AudioError, match="shape"):
        as_wave(np.zeros((1, 2, 3)))


def test_save_roundtrip_and_atomic(tmp_path):
    wave = torch.from_numpy(tone(16000, channels=2).T.copy())
    path = save(tmp_path / "out" / "x.wav", wave, 16000)
    back, sr = load(path, mono=False)
    assert sr == 16000 and torch.allclose(back, wave)
    assert [p.name for p in path.parent.iterdir()] == ["x.wav"]  # no temp file left behind


def test_failed_save_keeps_previous_file(tmp_path):
    path = save(tmp_path / "x.wav", torch.zeros(100) + 0.1, 8000)
    with pytest.raises(AudioError):
        save(path, torch.full((100,), float("nan")), 8000)
    back, _ = load(path)
    assert torch.allclose(back, torch.full((100,), 0.1))
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("n_fft,hop", [(510, 128), (1022, 256), (256, 64)])
def test_stft_roundtrip(n_fft, hop):
    wave = torch.randn(2, 3, 12345)
    spec = stft(wave, n_fft, hop)
    assert spec.shape[:3] == (2, 3, n_fft // 2 + 1)
    assert (istft(spec, n_fft, hop, wave.shape[-1]) - wave).abs().max() < 1e-5
    assert torch.isfinite(log_magnitude(spec.abs() * 0)).all()


def test_resample_identity_when_rates_match():
    wave = torch.randn(100)
    assert resample(wave, 8000, 8000) is wave


def test_chunk_spans_cover_signal():
    spans = chunk_spans(1000, 300, 50)
    assert spans[0] == (0, 300) and spans[-1][1] == 1000
    assert all(b[0] == a[0] + 250 for a, b in zip(spans, spans[1:]))


@pytest.mark.parametrize("length", [1000, 250, 1251])
def test_overlap_add_identity_is_exact(length):
    wave = torch.randn(2, length)
    out = process_in_chunks(lambda x: x.unsqueeze(0).repeat(3, 1, 1), wave, 300, 50)
    assert out.shape == (3, 2, length)
    assert torch.allclose(out[1], wave, atol=1e-6)


def test_loudest_window_finds_the_burst_and_passes_gradients():
    wave = torch.zeros(3, 2, 4000)
    for i, start in enumerate((0, 1536, 3000)):  # each row's burst somewhere else
        wave[i, :, start : start + 1000] = 1.0
    wave.requires_grad_()
    window = loudest_window(wave, 1000, hop=8)
    assert window.shape == (3, 2, 1000)
    assert torch.equal(window.detach(), torch.ones(3, 2, 1000))  # each window is its burst
    window.sum().backward()
    assert torch.equal(wave.grad, (wave.detach() == 1).float())  # the chosen samples only
    assert loudest_window(wave, 5000) is wave  # not longer than the window: unchanged
    tail = torch.zeros(1, 1000)
    tail[0, 700:] = 1.0  # (1000 - 300) is no multiple of the hop: the last window still counts
    assert torch.equal(loudest_window(tail, 300), torch.ones(1, 300))


def no_sinc_kernel(monkeypatch):
    """Make torchaudio's windowed sinc (a kernel of one row per output phase) unusable."""

    def refused(*args, **kwargs):
        raise AssertionError("built a windowed-sinc kernel")

    monkeypatch.setattr("wsas.audio.AF.resample", refused)


@pytest.mark.parametrize("sr_in", [44101, 22051, 44100])
def test_resample_builds_no_kernel_sized_by_the_rates_common_factor(monkeypatch, sr_in):
    no_sinc_kernel(monkeypatch)
    out = resample(torch.from_numpy(tone(sr_in, 1.0, 1000.0, channels=2).T), sr_in, 16000)
    assert out.shape == (2, 16000) and out.dtype == torch.float32
    expected = torch.from_numpy(tone(16000, 1.0, 1000.0, channels=2).T)
    assert (out - expected)[:, 200:-200].abs().max() < 2e-3  # edges: the filter's ramp


def test_resample_removes_what_lies_above_the_new_nyquist():
    out = resample(torch.from_numpy(tone(44101, 1.0, 9000.0)[:, 0]), 44101, 16000)
    assert out[200:-200].abs().max() < 1e-3  # 9 kHz cannot exist at 16 kHz: no alias left


def test_resample_length_is_the_ceiling_even_for_one_sample():
    from wsas.audio import resampled_length

    for n in (1, 7, 300, 44101):
        out = resample(torch.ones(3, n), 44101, 16000)
        assert out.shape == (3, resampled_length(n, 44101, 16000)) == (3, -(-n * 16000 // 44101))


def test_differentiable_resampler_kernel_is_bounded_and_coprime_rates_fall_back(monkeypatch):
    from wsas.audio import MAX_SINC_KERNEL, resample_differentiable, sinc_kernel_size

    common = [(8000, 48000), (16000, 48000), (44100, 48000), (11025, 16000), (192000, 8000)]
    assert all(sinc_kernel_size(a, b) <= MAX_SINC_KERNEL for a, b in common)
    assert sinc_kernel_size(44101, 16000) > MAX_SINC_KERNEL  # what today's kernel would be
    wave = torch.randn(2, 16000, requires_grad=True)
    resample_differentiable(wave, 16000, 48000).square().sum().backward()
    assert wave.grad.abs().sum() > 0
    no_sinc_kernel(monkeypatch)
    with torch.no_grad():
        assert resample_differentiable(wave, 44101, 16000).shape == (2, 5805)
    with pytest.raises(AudioError, match="44101 -> 16000 Hz"):
        resample_differentiable(wave, 44101, 16000)


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_load_refuses_a_file_truncated_while_being_read(tmp_path, monkeypatch, suffix):
    import os

    import wsas.audio

    path = tmp_path / f"x{suffix}"
    sf.write(path, tone(16000, 2.0), 16000)
    opened = wsas.audio.open_audio

    def open_then_truncate(p):
        f = opened(p)
        os.truncate(p, os.path.getsize(p) // 3)
        return f

    monkeypatch.setattr(wsas.audio, "open_audio", open_then_truncate)
    with pytest.raises(AudioError, match=f"x{suffix}: .*truncated"):
        load(path)
