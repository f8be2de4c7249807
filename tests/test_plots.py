"""The book's figures and players: shared scales, blank cells, playable embedded audio."""

import base64
import io
import re

import matplotlib
import numpy as np
import soundfile as sf
import torch

from wsas.plots import audio_tag, players_table, spectrogram_grid

matplotlib.use("Agg")
SR = 8000


def tone(hz: float, db: float, seconds: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * SR)) / SR
    return 10 ** (db / 20) * torch.sin(2 * torch.pi * hz * t)


def decoded(tag: str) -> tuple[np.ndarray, int]:
    data = re.search(r'src="data:audio/wav;base64,([^"]+)"', tag).group(1)
    return sf.read(io.BytesIO(base64.b64decode(data)), dtype="float32")


def test_grid_shares_one_db_scale_so_a_quieter_wave_looks_darker():
    loud, quiet = tone(440, -6), tone(440, -26)
    fig = spectrogram_grid({"reference": {"a": loud}, "model": {"a": quiet}}, SR)
    (ref_img,), (est_img,) = (ax.get_images() for ax in fig.axes)
    assert ref_img.get_clim() == est_img.get_clim()
    assert est_img.get_array().max() < ref_img.get_array().max() - 15


def test_grid_has_one_column_per_name_and_leaves_missing_cells_blank():
    rows = {"": {"mix": tone(300, -6), "a": tone(440, -6)}, "model": {"a": tone(440, -9)}}
    fig = spectrogram_grid(rows, SR)
    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes if ax.axison] == ["mix", "a", "model: a"]


def test_audio_tag_embeds_the_wave_as_16_bit_wav_times_its_gain():
    wave = tone(440, -6)
    samples, rate = decoded(audio_tag(wave, SR, gain=0.5))
    assert rate == SR and len(samples) == len(wave)
    np.testing.assert_allclose(samples, 0.5 * wave.numpy(), atol=2e-4)


def test_players_share_one_gain_that_keeps_the_loudest_below_full_scale():
    loud, quiet = 1.6 * tone(440, 0), tone(440, -20)
    table = players_table({"mixture": {"a": loud}, "model": {"a": (quiet, "SI-SDR 3.0 dB")}}, SR)
    tags = re.findall(r"<audio[^>]*></audio>", table)
    (played_loud, _), (played_quiet, _) = (decoded(t) for t in tags)
    assert abs(np.abs(played_loud).max() - 0.99) < 1e-3
    ratio = np.abs(played_quiet).max() / np.abs(played_loud).max()
    assert abs(ratio - float(quiet.abs().max() / loud.abs().max())) < 1e-3
    assert "SI-SDR 3.0 dB" in table


def test_players_table_never_amplifies_quiet_audio():
    samples, _ = decoded(players_table({"x": {"a": tone(440, -30)}}, SR))
    assert abs(np.abs(samples).max() - 10 ** (-30 / 20)) < 1e-3
