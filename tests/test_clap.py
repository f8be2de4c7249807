import pytest
import torch

from wsas.checkpoint import save_checkpoint
from wsas.clap import BACKENDS, Clap, TextCache, clap_class, load_clap
from wsas.clap.pretrain import evaluate_clap, info_nce
from wsas.clap.tiny import TinyClap, sentence_encoder
from wsas.data.datasets import load_embedded
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


def test_the_critic_in_bf16_sends_nearly_the_float32_gradient(clap, smoke_corpus):
    """What TrainConfig.critic_bf16 relies on: under bf16 autocast (the tower in bf16, the log-mel
    in float32) the similarity loss's gradient into the clips keeps its direction."""
    import torch.nn.functional as F

    clips = load_embedded(smoke_corpus, "train")
    waves = torch.stack([torch.as_tensor(w[:8000]) for w in clips.waves[:16]]).float()
    texts = clap.embed_text([p[0] for p in clips.phrasings[:16]])
    grads = []
    for bf16 in (False, True):
        wave = waves.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            assert clap.log_mel(wave, 8000).dtype == torch.float32
            audio = clap.embed_audio(wave, 8000)
        assert audio.dtype == (torch.bfloat16 if bf16 else torch.float32)
        logits = clap.logit_scale * audio.float() @ texts.T
        F.cross_entropy(logits, torch.arange(len(texts))).backward()
        grads.append(wave.grad.flatten())
    cosine = F.cosine_similarity(*grads, dim=0)
    assert 0.999 < cosine < 1 - 1e-7, cosine  # rounded, and the same direction within 0.1 %


def test_resamples_other_rates(clap):
    a = clap.embed_audio(torch.randn(1, 16000) * 0.1, 16000)
    assert a.shape == (1, clap.embed_dim)


def test_sentence_encoder_loads_without_network(monkeypatch, clap):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("the sentence encoder tried to open a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    sentence_encoder.cache_clear()
    try:
        assert sentence_encoder().encode(["offline"]).shape == (1, 384)
    finally:
        sentence_encoder.cache_clear()


def test_text_cache_encodes_each_string_once():
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return torch.arange(len(texts), dtype=torch.float32)[:, None] + len(calls) * 10

    cache = TextCache(encode)
    first = cache(["a", "b", "a"])
    second = cache(["b", "c"])
    assert calls == [["a", "b"], ["c"]]
    assert first[:, 0].tolist() == [10.0, 11.0, 10.0] and second[:, 0].tolist() == [11.0, 20.0]


def test_registry_names_every_backend_and_refuses_others():
    assert set(BACKENDS) == {"tiny", "laion"}
    assert BACKENDS["tiny"].weights_travel and not BACKENDS["laion"].weights_travel
    with pytest.raises(WsasError, match="unknown CLAP backend 'other'"):
        clap_class("other")


def test_info_nce_prefers_matching_pairs():
    a = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    assert info_nce(a, a, torch.tensor(10.0)) < info_nce(a, a.roll(1, 0), torch.tensor(10.0))


class OracleClap(Clap):
    """Embeds each test clip as the one-hot of its class (looked up by waveform) and each text as
    the one-hot of the class it names, shifted by ``shift`` classes (shift 1: always wrong)."""

    def __init__(self, clips, shift: int):
        super().__init__()
        self.n = len(clips.class_names)
        self.by_wave = {w.numpy().tobytes(): int(c) for w, c in zip(clips.waves, clips.labels)}
        self.by_text = {p: i for i, p in enumerate(clips.prompts)}
        for phrasings, c in zip(clips.phrasings, clips.labels):
            self.by_text.update({p: int(c) for p in phrasings})
        self.shift = shift

    def embed_audio(self, wave, sr):
        labels = [self.by_wave[w.numpy().tobytes()] for w in wave]
        return torch.nn.functional.one_hot(torch.tensor(labels), self.n).float()

    def embed_text(self, texts):
        labels = [(self.by_text[t] + self.shift) % self.n for t in texts]
        return torch.nn.functional.one_hot(torch.tensor(labels), self.n).float()


@pytest.mark.parametrize("shift, expected", [(0, 1.0), (1, 0.0)])
def test_evaluate_scores_a_perfect_and_a_wrong_clap(smoke_corpus, shift, expected):
    clips = load_embedded(smoke_corpus, "test")
    report = evaluate_clap(OracleClap(clips, shift), smoke_corpus)
    assert report["clips"] == len(clips)
    assert report["zero_shot_accuracy"] == expected and report["text_to_audio_recall@1"] == expected


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


def test_a_lean_tinyclap_is_cheaper_and_unknown_sizes_are_refused(smoke_corpus, tmp_path):
    from wsas.clap.pretrain import pretrain
    from wsas.clap.tiny import SIZES

    full, lean = (TinyClap({"sample_rate": 8000, **SIZES[s]}) for s in ("full", "lean"))
    wave = torch.randn(2, 16000)
    assert lean.log_mel(wave, 8000).shape[-2:] == (32, 63)  # half the mel grid each way
    assert full.log_mel(wave, 8000).shape[-2:] == (64, 126)
    assert sum(p.numel() for p in lean.audio_tower.parameters()) < sum(
        p.numel() for p in full.audio_tower.parameters()
    )
    with pytest.raises(WsasError, match="unknown TinyCLAP size 'huge'; choose one of full, lean,"):
        pretrain(smoke_corpus, tmp_path / "c.safetensors", steps=15, progress=False, size="huge")


def test_cli_pretrains_the_presets_critic_and_puts_another_size_beside_it(
    smoke_corpus, smoke_clap, tmp_path, capsys, monkeypatch
):
    import json
    import shutil
    from dataclasses import replace

    from wsas.checkpoint import read_config
    from wsas.cli import main
    from wsas.presets import PRESETS

    data = tmp_path / "data"
    shutil.copytree(smoke_corpus, data)
    before = (data / "tinyclap.safetensors").read_bytes()  # smoke's critic is full
    pretrain = ["clap", "pretrain", "--data", str(data), "--steps", "15", "--preset"]
    assert main([*pretrain, "smoke", "--size", "lean"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["size"] == "lean" and report["checkpoint"] == str(
        data / "tinyclap-lean.safetensors"
    )
    # leanaudio learns into the text space of the full critic there
    assert main([*pretrain, "smoke", "--size", "leanaudio"]) == 0
    report = json.loads(capsys.readouterr().out)
    leanaudio = data / "tinyclap-leanaudio.safetensors"
    assert report["checkpoint"] == str(leanaudio) and read_config(leanaudio)["text_from"] == "full"
    captions = ["a dog barks"]
    assert torch.equal(
        load_clap("tiny", leanaudio).embed_text(captions),
        load_clap("tiny", data / "tinyclap.safetensors").embed_text(captions),
    )
    assert read_config(data / "tinyclap-lean.safetensors")["n_mels"] == 32
    assert (data / "tinyclap.safetensors").read_bytes() == before  # training's default critic
    # a preset whose critic is lean: that size becomes the default one
    monkeypatch.setitem(PRESETS, "smoke", replace(PRESETS["smoke"], critic="lean"))
    assert main([*pretrain, "smoke"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["size"] == "lean" and report["checkpoint"] == str(data / "tinyclap.safetensors")
    assert read_config(data / "tinyclap.safetensors")["n_mels"] == 32
    # its full TinyCLAP would sit beside it, and is not there: a one-line error
    assert main([*pretrain, "smoke", "--size", "leanaudio"]) != 0
    assert "learns into the text space of" in capsys.readouterr().err


def test_a_critic_pretrained_into_another_ones_text_space_embeds_captions_as_it_does(
    smoke_corpus, smoke_clap, tmp_path
):
    from wsas.clap.pretrain import pretrain
    from wsas.clap.tiny import SIZES

    donor, out = load_clap("tiny", smoke_clap), tmp_path / "hybrid.safetensors"
    model = pretrain(
        smoke_corpus, out, steps=15, batch=12, progress=False, size="leanaudio", text_from=donor
    )
    captions = ["a dog barks", "a violin plays and birds chirp"]
    reloaded = load_clap("tiny", out)
    assert torch.equal(reloaded.embed_text(captions), donor.embed_text(captions))
    assert reloaded.config["text_from"] == "full"  # kept: lean and leanaudio stay apart
    torch.manual_seed(0)  # the initial weights pretrain starts from
    initial = TinyClap({"sample_rate": 8000, **SIZES["lean"]})
    assert not torch.equal(initial.audio_proj[0].weight, model.audio_proj[0].weight)  # it learned
    for size, text_from, message in [
        ("leanaudio", TinyClap(SIZES["lean"]), "into the text space of a pretrained full TinyCLAP"),
        ("leanaudio", None, "into the text space of a pretrained full TinyCLAP"),
        ("lean", donor, "learns its own text projection: pass no text_from"),
    ]:
        with pytest.raises(WsasError, match=message):
            pretrain(smoke_corpus, out, steps=1, progress=False, size=size, text_from=text_from)


def test_tinyclap_token_states_go_through_its_text_projection(clap):
    states, mask = clap.embed_text_tokens(["a dog barks", "piano"])
    assert states.shape == (2, mask.shape[1], clap.token_dim) and clap.token_dim == clap.embed_dim
    assert mask[0].all() and 0 < mask[1].sum() < mask[0].sum()  # the shorter text is padded
    assert torch.equal(states[1][~mask[1]], torch.zeros_like(states[1][~mask[1]]))
    again, _ = clap.embed_text_tokens(["piano"])  # cached per string, the same alone or batched
    assert torch.allclose(again[0], states[1][: again.shape[1]], atol=1e-6)


# ---- LAION-CLAP's architecture with random weights (offline) ------------------------------------
def _laion_missing() -> str | None:
    import importlib.util

    for name in ("laion_clap", "torchlibrosa"):
        if importlib.util.find_spec(name) is None:
            return f"{name} is not installed (pip install --no-deps laion-clap==1.1.7 torchlibrosa)"
    return None


laion = pytest.mark.skipif(_laion_missing() is not None, reason=str(_laion_missing()))


@pytest.fixture(scope="module")
def random_laion():
    from wsas.clap.laion import LaionClap

    torch.manual_seed(0)
    return LaionClap.random("HTSAT-tiny").freeze()


def test_a_checkpoint_name_picks_its_audio_tower():
    from wsas.clap.laion import AUDIO_MODEL, audio_model

    assert audio_model("/ckpts/music_audioset_epoch_15_esc_90.14.pt") == "HTSAT-base"
    assert audio_model("630k-audioset-best.pt") == "HTSAT-tiny"
    assert audio_model("my-own-finetune.pt") == "HTSAT-tiny"
    assert set(AUDIO_MODEL.values()) == {"HTSAT-tiny", "HTSAT-base"}


@laion
def test_laion_text_tower_returns_robertas_token_states(random_laion):
    texts = ["a dog barks", "a violin plays a slow tune"]
    states, mask = random_laion.embed_text_tokens(texts)
    assert states.shape == (2, 77, random_laion.token_dim) and random_laion.token_dim == 768
    assert mask.sum(1).tolist() == [3 + 2, 6 + 2]  # words plus <s> and </s>
    text = random_laion.embed_text(texts)
    assert text.shape == (2, 512) and torch.allclose(text.norm(dim=-1), torch.ones(2))


@laion
def test_laion_audio_tower_hears_estimates_resampled_to_48_khz(random_laion):
    from wsas.audio import resample_differentiable as resample  # the critic's own resampler

    assert random_laion.model.audio_cfg.sample_rate == random_laion.sample_rate == 48_000
    wave = 0.1 * torch.randn(2, 16_000, generator=torch.Generator().manual_seed(0))
    at_16k = random_laion.embed_audio(wave, 16_000)
    at_48k = random_laion.embed_audio(resample(wave, 16_000, 48_000), 48_000)
    assert at_16k.shape == (2, 512) and torch.allclose(at_16k, at_48k, atol=1e-5)
    other = random_laion.embed_audio(0.1 * torch.randn(2, 16_000), 16_000)
    assert not torch.allclose(at_16k, other, atol=1e-3)


@laion
def test_a_weak_step_through_laion_reaches_the_separator(random_laion, smoke_corpus, tmp_path):
    from wsas.presets import TrainConfig
    from wsas.train import Trainer

    config = TrainConfig(
        mode="weak",
        batch_size=1,
        conditioning="cross",
        unet={"channels": 4, "levels": 3, "convs_per_block": 1},
    )
    trainer = Trainer(config, random_laion, tmp_path, load_embedded(smoke_corpus, "train"))
    assert trainer.model.config.cond_dim == 768  # the separator attends to RoBERTa's states
    parts = trainer.losses()
    weights = [p for p in trainer.model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(parts["similarity"], weights, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)  # through HTSAT, 48 kHz
    assert all(p.grad is None for p in random_laion.parameters())
