import pytest
import torch

from wsas.checkpoint import save_checkpoint
from wsas.clap.base import load_clap
from wsas.clap.tiny import TinyClap, evaluate_clap, info_nce
from wsas.errors import CheckpointError, WsasError


@pytest.fixture(scope="module")
def clap(smoke_clap):
    return load_clap("tiny", str(smoke_clap))


def test_embeddings_are_normalised(clap):
    text = clap.embed_text(["a dog barks", "a violin plays"])
    audio = clap.embed_audio(torch.randn(3, 8000) * 0.1, 8000)
    assert text.shape == (2, clap.embed_dim) and audio.shape == (3, clap.embed_dim)
    assert torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(audio.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_gradient_reaches_waveform_but_not_weights(clap):
    wave = (torch.randn(2, 8000) * 0.1).requires_grad_()
    sims = clap.similarity(wave, 8000, ["a dog barks"])
    sims.sum().backward()
    assert wave.grad is not None and wave.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in clap.parameters())


def test_resamples_other_rates(clap):
    a = clap.embed_audio(torch.randn(1, 16000) * 0.1, 16000)
    assert a.shape == (1, clap.embed_dim)


def test_text_tokens_for_deep_conditioning(clap):
    tokens, mask = clap.text_tokens(["a dog barks", "rain"])
    assert tokens.shape[0] == 2 and tokens.shape[-1] == clap.text_dim
    assert mask[0].sum() > mask[1].sum()


def test_offline_loading(monkeypatch, clap):
    import os

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert clap.embed_text(["offline"]).shape == (1, clap.embed_dim)


def test_info_nce_prefers_matching_pairs():
    a = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    assert info_nce(a, a, torch.tensor(10.0)) < info_nce(a, a.roll(1, 0), torch.tensor(10.0))


def test_evaluate_reports_accuracy_and_recall(clap, smoke_corpus):
    report = evaluate_clap(clap, smoke_corpus)
    assert 0 <= report["zero_shot_accuracy"] <= 1 and 0 <= report["text_to_audio_recall@1"] <= 1


def test_checkpoint_round_trip(tmp_path, clap):
    clap.save(tmp_path / "c.safetensors")
    again = TinyClap.load(tmp_path / "c.safetensors")
    assert torch.allclose(again.embed_text(["x"]), clap.embed_text(["x"]))


def test_wrong_checkpoint_kind(tmp_path):
    save_checkpoint(tmp_path / "x.safetensors", {"a": torch.zeros(1)}, {"kind": "separator"})
    with pytest.raises(CheckpointError, match="expected a 'tiny_clap'"):
        TinyClap.load(tmp_path / "x.safetensors")


def test_missing_tiny_checkpoint_is_explained():
    with pytest.raises(WsasError, match="wsas clap pretrain"):
        load_clap("tiny", None)


def test_laion_backend_says_what_is_missing(tmp_path):
    with pytest.raises(WsasError, match="LAION-CLAP"):
        load_clap("laion", str(tmp_path / "630k-audioset-best.pt"))
