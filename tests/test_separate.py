import json

import numpy as np
import pytest
import soundfile as sf
import torch

from wsas.audio import load
from wsas.checkpoint import save_checkpoint
from wsas.cli import main
from wsas.errors import AudioError, CaptionError, CheckpointError, WsasError
from wsas.separate import Separator


@pytest.fixture(scope="module")
def sep(smoke_separator):
    return Separator.from_checkpoint(smoke_separator)


def noise(shape, seed=0):
    return np.random.default_rng(seed).normal(0, 0.1, shape).astype(np.float32)


@pytest.mark.parametrize("sr", [8000, 16000, 44100, 96000])
def test_returns_input_rate_and_length(sep, sr):
    wave = noise(int(0.7 * sr))
    out = sep(wave, sr, ["a violin plays", "a dog barks"])
    assert list(out) == ["a violin plays", "a dog barks"]
    assert all(isinstance(v, np.ndarray) and v.shape == wave.shape for v in out.values())
    assert np.allclose(sum(out.values()) + sep.residual, wave, atol=1e-5)


def test_stereo_gives_stereo_and_torch_gives_torch(sep):
    wave = torch.from_numpy(noise((2, 12000)))
    out = sep(wave, 16000, "a flute plays")
    assert isinstance(out["a flute plays"], torch.Tensor) and out["a flute plays"].shape == (
        2,
        12000,
    )


def test_silent_input_gives_silence(sep):
    out = sep(np.zeros(8000, dtype=np.float32), 8000, "a bird tweets")
    assert np.isfinite(out["a bird tweets"]).all() and np.abs(out["a bird tweets"]).max() < 1e-6


@pytest.mark.parametrize("bad,match", [(np.zeros(0), "zero-length"), (np.full(100, np.nan), "NaN")])
def test_bad_waves(sep, bad, match):
    with pytest.raises(AudioError, match=match):
        sep(bad, 8000, "x y")


@pytest.mark.parametrize("queries", [[], [""], ["  ..."]])
def test_empty_queries(sep, queries):
    with pytest.raises(CaptionError):
        sep(noise(800), 8000, queries)


def test_chunked_matches_unchunked_away_from_edges(sep, monkeypatch):
    wave = noise(8000 * 20)
    monkeypatch.setattr("wsas.separate.CHUNK_SECONDS", 60.0)
    whole = sep(wave, 8000, "a cello plays")["a cello plays"]
    monkeypatch.setattr("wsas.separate.CHUNK_SECONDS", 6.0)
    chunked = sep(wave, 8000, "a cello plays")["a cello plays"]
    error = np.abs(whole - chunked)[8000:-8000]
    assert error.mean() < 0.02 * np.abs(whole).mean() + 1e-6


def test_caption_driven_stems_add_up(sep):
    wave = noise(16000)
    stems = sep.separate_caption(wave, 8000, "A violin plays while a dog barks")
    assert list(stems) == ["a violin plays", "a dog barks"]
    assert np.allclose(sum(stems.values()) + sep.residual, wave, atol=1e-5)


def test_separate_file_streams_and_writes_atomically(sep, tmp_path):
    path = tmp_path / "mix.flac"
    sf.write(path, noise((30000, 2)), 44100)
    written = sep.separate_file(
        path, ["a dog barks"], tmp_path / "out", "flac", residual=True, progress=False
    )
    stem, sr = load(written["a dog barks"], mono=False)
    assert sr == 44100 and stem.shape == (2, 30000)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "mix__a_dog_barks.flac",
        "mix__residual.flac",
    ]


def test_unknown_checkpoint_format(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint"):
        Separator.from_checkpoint(bad)


def test_checkpoint_from_another_config(tmp_path, smoke_separator):
    from wsas.checkpoint import load_checkpoint

    tensors, config = load_checkpoint(smoke_separator)
    config["unet"]["channels"] = 64
    save_checkpoint(tmp_path / "other.safetensors", tensors, config)
    with pytest.raises(CheckpointError, match="does not match"):
        Separator.from_checkpoint(tmp_path / "other.safetensors")


def test_cli_separate_with_queries_and_caption(smoke_separator, tmp_path, capsys):
    path = tmp_path / "mix.wav"
    sf.write(path, noise(12000), 16000)
    assert (
        main(
            [
                "separate",
                str(path),
                "-q",
                "a dog barks",
                "-q",
                "a violin plays",
                "--checkpoint",
                str(smoke_separator),
                "-o",
                str(tmp_path / "q"),
                "--quiet",
            ]
        )
        == 0
    )
    assert len(list((tmp_path / "q").glob("*.wav"))) == 2
    assert (
        main(
            [
                "separate",
                str(path),
                "--caption",
                "A man speaks while a dog barks",
                "--checkpoint",
                str(smoke_separator),
                "-o",
                str(tmp_path / "c"),
                "--quiet",
            ]
        )
        == 0
    )
    manifest = json.loads((tmp_path / "c" / "mix__manifest.json").read_text())
    assert [s["clause"] for s in manifest["stems"]] == ["a man speaks", "a dog barks", "residual"]
    total = sum(load(s["file"])[0] for s in manifest["stems"])
    assert torch.allclose(total, load(path)[0], atol=1e-4)


@pytest.mark.parametrize(
    "args,match",
    [
        (["missing.wav", "-q", "x"], "no such file"),
        (["MIX", "-q", ""], "empty query"),
        (["MIX"], "either -q"),
    ],
)
def test_cli_separate_errors_exit_2(smoke_separator, tmp_path, capsys, args, match):
    path = tmp_path / "mix.wav"
    sf.write(path, noise(1000), 16000)
    args = [
        str(path) if a == "MIX" else str(tmp_path / a) if a == "missing.wav" else a for a in args
    ]
    assert (
        main(["separate", *args, "--checkpoint", str(smoke_separator), "-o", str(tmp_path / "o")])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_cli_separates_44k_stereo_mp3_with_two_queries(smoke_separator, tmp_path, capsys):
    path = tmp_path / "song.mp3"
    sf.write(path, noise((44100 * 3, 2)), 44100)
    assert (
        main(
            [
                "separate",
                str(path),
                "-q",
                "a violin plays",
                "-q",
                "a piano plays",
                "--checkpoint",
                str(smoke_separator),
                "-o",
                str(tmp_path / "out"),
                "--quiet",
            ]
        )
        == 0
    )
    stem, sr = load(tmp_path / "out" / "song__a_violin_plays.wav", mono=False)
    original, _ = load(path, mono=False)
    assert sr == 44100 and stem.shape == original.shape


def test_a_published_model_is_listed_and_loads_by_name(smoke_separator, smoke_corpus, tmp_path):
    from safetensors import safe_open

    from wsas.bundle import load_run
    from wsas.evaluate import evaluate_run
    from wsas.lab.shipping import publish_card as publish
    from wsas.pretrained import cards, model_path

    report = evaluate_run(smoke_separator, smoke_corpus, 6)
    card = publish(smoke_separator, "tiny-weak", report, "smoke corpus", folder=tmp_path)
    assert cards(tmp_path) == {"tiny-weak": card}
    assert card["test_si_sdr_db"]["mean"] == pytest.approx(report["si_sdr"], abs=0.01)
    low, high = card["test_si_sdr_db"]["ci95"]
    assert low < card["test_si_sdr_db"]["mean"] < high and card["test_pairs"] == 6
    assert card["test_clip_seconds"] == report["test_clip_seconds"] == 1.024  # smoke: 8192 samples
    assert card["test_level_error_db"] == round(report["level_db"], 2)
    sep = Separator.from_checkpoint(model_path("tiny-weak", tmp_path))
    assert set(sep(torch.randn(4000) * 0.1, 8000, ["a dog barks"])) == {"a dog barks"}
    with safe_open(model_path("tiny-weak", tmp_path), "pt") as f:  # stored as float16
        assert {f.get_tensor(k).dtype for k in f.keys()} <= {torch.float16, torch.int64}
    trained, shipped = (
        load_run(p).model.state_dict() for p in (smoke_separator, model_path("tiny-weak", tmp_path))
    )
    for key, value in trained.items():  # loads back as float32, equal to float16 rounding
        assert shipped[key].dtype == value.dtype
        assert torch.equal(
            shipped[key], value.half().to(value.dtype) if value.is_floating_point() else value
        )
    with pytest.raises(WsasError, match="unknown model 'nope'; shipped: tiny-weak"):
        model_path("nope", tmp_path)


def test_separation_works_before_any_training_with_the_shipped_model(tmp_path, capsys):
    from wsas.pretrained import DEFAULT, cards

    assert DEFAULT in cards() and {"weak", "mix-and-separate", "supervised"} <= set(cards())
    path = tmp_path / "mix.wav"
    sf.write(path, noise(16000), 16000)
    code = main(["separate", str(path), "-q", "a violin plays", "-o", str(tmp_path / "o")])
    captured = capsys.readouterr()
    assert code == 0 and "using the shipped model 'weak'" in captured.err
    (line,) = [x for x in captured.out.splitlines() if x.startswith("a violin plays")]
    stem, rate = sf.read(line.split("\t")[1])
    assert rate == 16000 and stem.shape == (16000,)
    assert main(["models"]) == 0 and "weak: weak (deep), 8000 Hz" in capsys.readouterr().out
    assert main(["models", "--seed", "1", "--only", "weak"]) != 0  # nothing is retrained
    assert "--seed, --only only go with --remake" in capsys.readouterr().err
    assert main(["models", "--remake", "--only", "supervised, pit", "--work", str(tmp_path)]) != 0
    assert "cannot ship pit; shipped regimes:" in capsys.readouterr().err  # before any training


def test_cli_separate_names_the_model_and_the_output_folder(tmp_path, capsys):
    from wsas.pretrained import model_path

    path = tmp_path / "mix.wav"
    sf.write(path, noise(8000), 8000)
    assert main(["separate", str(path), "-q", "a dog barks", "-o", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "using the shipped model 'weak' (`wsas models` describes it; 8000 Hz)" in err
    assert f"wrote 1 audio file and 1 manifest to {tmp_path / 'o'}" in err
    weights = model_path("weak")
    args = ["-q", "a dog barks", "--checkpoint", str(weights), "-o", str(tmp_path / "c")]
    assert main(["separate", str(path), *args]) == 0
    assert f"using the checkpoint {weights} (weak, 8000 Hz)" in capsys.readouterr().err
    assert main(["separate", str(path), *args, "--overwrite", "--quiet"]) == 0
    assert capsys.readouterr().err == ""  # --quiet: no bar, no notes on model and outputs


def test_cli_separate_verbose_says_how_the_input_is_resampled(tmp_path, capsys):
    path = tmp_path / "song.wav"
    sf.write(path, noise((22050, 2)), 44100)
    args = ["separate", str(path), "-q", "a dog barks", "--quiet"]
    assert main([*args, "-o", str(tmp_path / "v"), "--verbose"]) == 0
    said = f"{path}: resampled 44100 Hz -> 8000 Hz for the model; outputs written at 44100 Hz"
    assert said in capsys.readouterr().err
    assert sf.info(str(tmp_path / "v" / "song__a_dog_barks.wav")).samplerate == 44100
    assert main([*args, "-o", str(tmp_path / "plain")]) == 0
    assert "resampled" not in capsys.readouterr().err


def test_progress_bar_only_for_inputs_of_a_minute_or_more_and_never_when_quiet(
    tmp_path, capsys, monkeypatch
):
    import wsas.separate

    assert wsas.separate.PROGRESS_SECONDS == 60
    monkeypatch.setattr(wsas.separate, "PROGRESS_SECONDS", 1.0)  # a "long" file of 2 s
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    sf.write(short, noise(4000), 8000)
    sf.write(long, noise(16000), 8000)

    def shows_bar(*args):
        out = ["-q", "a dog barks", "-o", str(tmp_path / "o"), "--overwrite"]
        assert main(["separate", *args, *out]) == 0
        return "separating" in capsys.readouterr().err

    assert shows_bar(str(long))
    assert not shows_bar(str(short))
    assert not shows_bar(str(long), "--quiet")


def test_a_query_by_example_is_the_clap_audio_embedding_of_the_example(sep):
    example = torch.from_numpy(noise((2, 8000), seed=3))  # stereo: mixed to mono first
    names, q = sep.query_embeddings(["a dog barks"], {"like dog.wav": (example, 8000)})
    assert names == ["a dog barks", "like dog.wav"] and q.shape == (1, 2, sep.clap.embed_dim)
    expected = sep.clap.embed_audio(example.mean(0)[None], 8000)[0]
    assert torch.allclose(q[0, 1], expected, atol=1e-5)
    assert torch.allclose(q[0, 0], sep.embed(["a dog barks"])[0])


def test_separate_by_text_and_by_example_adds_up_to_the_mixture(sep):
    wave, example = noise(12000), noise(4000, seed=5)
    out = sep.separate(wave, 8000, ["a dog barks"], query_audio={"mine": (example, 8000)})
    assert list(out) == ["a dog barks", "mine"]
    assert not np.allclose(out["a dog barks"], out["mine"])  # another query, another estimate
    assert np.allclose(sum(out.values()) + sep.residual, wave, atol=1e-5)
    with pytest.raises(CaptionError, match="names two queries"):
        sep.separate(wave, 8000, ["mine"], query_audio={"mine": (example, 8000)})


def test_cli_separates_by_an_example_file(smoke_separator, tmp_path):
    sf.write(tmp_path / "mix.wav", noise(12000), 8000)
    sf.write(tmp_path / "dog.wav", noise((6000, 2), seed=2), 16000)
    args = ["separate", str(tmp_path / "mix.wav"), "-Q", str(tmp_path / "dog.wav"), "--residual"]
    code = main([*args, "--checkpoint", str(smoke_separator), "-o", str(tmp_path / "o"), "--quiet"])
    assert code == 0
    manifest = json.loads((tmp_path / "o" / "mix__manifest.json").read_text())
    assert [s["query"] for s in manifest["stems"]] == ["like dog.wav", "residual"]
    total = sum(load(s["file"])[0] for s in manifest["stems"])
    assert torch.allclose(total, load(tmp_path / "mix.wav")[0], atol=1e-5)
