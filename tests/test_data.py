import csv
import hashlib
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from wsas.data.classes import CLASS_BY_NAME, CLASS_SETS, CLASSES
from wsas.data.datasets import (
    AudioCaptionDataset,
    ClipSet,
    audiocaps_items,
    clotho_items,
    load_embedded,
    music_items,
    vggsound_items,
)
from wsas.data.mixing import fixed_pairs, sample_batch
from wsas.data.synth import (
    VARIATION_RANGES,
    Renderer,
    build_corpus,
    corpus_matches,
    draw_variation,
)
from wsas.presets import PRESETS


def rows_of(root):
    with open(root / "metadata.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_corpus_has_20_plus_classes_with_4_plus_phrasings():
    assert len(CLASSES) >= 20
    assert all(len(c.phrasings) >= 4 for c in CLASSES)
    assert len({c.prompt for c in CLASSES}) == len(CLASSES)


def test_build_is_deterministic(smoke_corpus, tmp_path):
    preset = PRESETS["smoke"]
    small = type(preset)(
        **{**preset.to_dict(), "clips_per_class": {"clap": 0, "train": 1, "val": 0, "test": 1}}
    )
    build_corpus(small, tmp_path, progress=False)
    for row in rows_of(tmp_path):
        a = hashlib.sha256((tmp_path / row["path"]).read_bytes()).hexdigest()
        b = hashlib.sha256((smoke_corpus / row["path"]).read_bytes()).hexdigest()
        assert a == b, row["id"]


class FreshRenderer(Renderer):
    """The reference: a new synthesizer (soundfont loaded again) for every clip."""

    def reset(self):
        import tinysoundfont

        self._synth = tinysoundfont.Synth(samplerate=self.sr)
        self._sfid = self._synth.sfload(str(self.soundfont))


@pytest.mark.parametrize("variation", [False, True])
def test_a_reset_synthesizer_renders_the_bytes_of_a_fresh_one(variation):
    names = ("church organ", "violin", "piano", "drum kit", "helicopter", "gunshots", "birds")
    reused, fresh = Renderer(None, 8000), FreshRenderer(None, 8000)
    for seed in (3, 17):  # every clip follows a clip of another class on the reused synthesizer
        for name in names:
            a, params_a = reused.render_clip(CLASS_BY_NAME[name], seed, 8192, variation)
            b, params_b = fresh.render_clip(CLASS_BY_NAME[name], seed, 8192, variation)
            assert a.tobytes() == b.tobytes() and params_a == params_b, (name, seed)


def corpus_files(root):
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != "corpus.json"  # corpus.json records the timing
    }


def test_a_program_the_soundfont_lacks_is_a_user_error():
    from wsas.errors import WsasError

    drums = CLASS_BY_NAME["drum kit"]
    with pytest.raises(WsasError, match="has no GM program 128:99"):
        Renderer(None, 8000)._synthesize(drums, [(0.0, 0.1, 36, 100)], 800, program=99)


def test_the_corpus_is_the_same_whatever_the_number_of_workers(tmp_path):
    preset = type(PRESETS["smoke"])(
        **{
            **PRESETS["smoke"].to_dict(),
            "clips_per_class": {"clap": 1, "train": 1, "val": 1, "test": 0},
        }
    )
    build_corpus(preset, tmp_path / "one", progress=False, workers=1)
    build_corpus(preset, tmp_path / "two", progress=False, workers=2)
    one, two = corpus_files(tmp_path / "one"), corpus_files(tmp_path / "two")
    assert len(one) == 3 * len(CLASSES) + 1 and one == two


def test_test_clips_can_be_longer_than_training_clips(tmp_path):
    preset = type(PRESETS["smoke"])(
        **{
            **PRESETS["smoke"].to_dict(),
            "clips_per_class": {"clap": 0, "train": 1, "val": 1, "test": 1},
            "test_clip_samples": 3 * PRESETS["smoke"].clip_samples,
        }
    )
    build_corpus(preset, tmp_path, progress=False)
    train, test = load_embedded(tmp_path, "train"), load_embedded(tmp_path, "test")
    assert test.waves.shape[-1] == 3 * train.waves.shape[-1] == preset.test_samples
    assert json.loads((tmp_path / "corpus.json").read_text())["test_clip_samples"] == 3 * 8192
    assert corpus_matches(tmp_path, preset) and not corpus_matches(tmp_path, PRESETS["smoke"])
    assert not corpus_matches(tmp_path / "missing", preset)
    assert PRESETS["tiny"].test_samples == 100 * 512  # BSS Eval's filter: 1 % of a test clip


def test_variation_changes_clips_deterministically():
    renderer, cls = Renderer(None, 8000), CLASS_BY_NAME["violin"]
    plain, _ = renderer.render_clip(cls, 5, 8192)
    varied, params = renderer.render_clip(cls, 5, 8192, variation=True)
    again, params_again = renderer.render_clip(cls, 5, 8192, variation=True)
    assert varied.tobytes() == again.tobytes() and params == params_again
    assert not np.allclose(plain, varied)
    assert set(VARIATION_RANGES) | {"program", "gain_db"} == set(params)


def test_clips_of_one_class_differ_in_program_and_eq():
    cls = CLASS_BY_NAME["saxophone"]
    draws = [draw_variation(cls, seed, 8000) for seed in range(12)]
    assert {d["program"] for d in draws} == set(cls.programs)  # 4 saxophones, all drawn
    assert len({round(d["eq_peak_hz"]) for d in draws}) == 12
    assert all(lo <= d["rt60_s"] <= hi for d in draws for lo, hi in [VARIATION_RANGES["rt60_s"]])


def test_a_smoke_sized_variation_corpus_records_what_each_clip_got(tmp_path):
    preset = type(PRESETS["smoke"])(**{**PRESETS["smoke"].to_dict(), "variation": True})
    build_corpus(preset, tmp_path, progress=False)
    rows = rows_of(tmp_path)
    assert len(rows) == len(CLASSES) * sum(preset.clips_per_class.values())
    violins = [r for r in rows if r["class"] == "violin"]
    assert {int(r["program"]) for r in violins} == {40, 41, 110}  # violin, viola, fiddle
    assert len({r["rt60_s"] for r in violins}) == len(violins)
    corpus = json.loads((tmp_path / "corpus.json").read_text())
    assert corpus["variation"] and corpus["programs"]["violin"] == [40, 41, 110]


def test_the_music_class_set_renders_its_instruments_only(tmp_path):
    preset = type(PRESETS["music"])(
        **{
            **PRESETS["music"].to_dict(),
            "clips_per_class": {"clap": 0, "train": 1, "val": 0, "test": 1},
        }
    )
    build_corpus(preset, tmp_path, progress=False)
    rows = rows_of(tmp_path)
    assert {r["class"] for r in rows} == set(CLASS_SETS["music"]) and len(rows) == 22
    assert len(CLASS_SETS["music"]) == 11 and "drum kit" not in CLASS_SETS["music"]


def test_tinyclap_pretrains_on_the_11_music_classes(tmp_path):
    from wsas.clap.pretrain import evaluate_clap, pretrain

    preset = type(PRESETS["music"])(
        **{
            **PRESETS["music"].to_dict(),
            "clips_per_class": {"clap": 1, "train": 0, "val": 0, "test": 0},
        }
    )
    build_corpus(preset, tmp_path, progress=False, workers=1)
    model = pretrain(tmp_path, tmp_path / "clap.safetensors", steps=2, batch=24, progress=False)
    report = evaluate_clap(model, tmp_path, "clap")
    assert report["classes"] == 11 and report["clips"] == 11  # scored among its own classes


def test_existing_presets_render_without_variation():
    assert not any(PRESETS[n].variation for n in ("smoke", "tiny", "small", "paper"))
    assert PRESETS["tiny-var"].variation and PRESETS["tiny-var"].classes == "all"
    assert PRESETS["music"].variation and PRESETS["music"].classes == "music"


def test_splits_are_disjoint_and_classes_balanced(smoke_corpus):
    rows = rows_of(smoke_corpus)
    seeds = {}
    for row in rows:
        seeds.setdefault(row["split"], set()).add(row["seed"])
    splits = list(seeds)
    assert set(splits) == {"clap", "train", "val", "test"}
    for i, a in enumerate(splits):
        for b in splits[i + 1 :]:
            assert not seeds[a] & seeds[b]
    for split, per_class in PRESETS["smoke"].clips_per_class.items():
        counts = {c.name: 0 for c in CLASSES}
        for row in rows:
            if row["split"] == split:
                counts[row["class"]] += 1
        assert set(counts.values()) == {per_class}


def test_clips_are_active_and_distinct(smoke_corpus):
    clips = load_embedded(smoke_corpus, "train")
    smoke = PRESETS["smoke"]
    assert clips.waves.shape == (len(CLASSES) * smoke.clips_per_class["train"], smoke.clip_samples)
    rms = clips.waves.pow(2).mean(-1).sqrt()
    assert (rms > 0.01).all()
    first, second = clips.waves[0], clips.waves[1]  # same class, different material
    assert clips.labels[0] == clips.labels[1] and not torch.allclose(first, second)


def test_other_soundfont_is_used(tmp_path):
    from wsas.errors import WsasError

    with pytest.raises(WsasError, match="soundfont not found"):
        Renderer(tmp_path / "missing.sf2", 8000)


def test_mixtures_sum_to_sources_with_distinct_classes(smoke_corpus):
    clips = load_embedded(smoke_corpus, "train")
    batch = sample_batch(clips, 6, 3, np.random.default_rng(0), groups=2)
    assert batch.sources.shape == (6, 2, 3, clips.waves.shape[-1])
    assert torch.allclose(batch.mixtures, batch.sources.sum(2))
    for row in batch.labels.reshape(6, -1):
        assert len(set(row.tolist())) == 6
    assert len(batch.captions) == 6 and all(len(c) == 2 for c in batch.captions)


def test_caption_variety(smoke_corpus):
    clips = load_embedded(smoke_corpus, "train")
    batch = sample_batch(clips, 200, 2, np.random.default_rng(1))
    captions = [c[0].lower() for c in batch.captions]
    connectives = {
        k
        for c in captions
        for k in (
            "while",
            "followed by",
            " and ",
            " as ",
            ",",
            "in the background",
            "then",
            "before",
            "after",
        )
        if k in c
    }
    assert len(connectives) >= 7
    assert len(set(captions)) > 190


def test_fixed_pairs_are_reproducible(smoke_corpus):
    clips = load_embedded(smoke_corpus, "test")
    a, b = fixed_pairs(clips, 10), fixed_pairs(clips, 10)
    assert torch.equal(a.sources, b.sources) and a.captions == b.captions
    assert (a.labels[:, 0, 0] != a.labels[:, 0, 1]).all()


def _write(path, seconds=0.5, sr=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(
        path, np.random.default_rng(0).normal(0, 0.1, int(seconds * sr)).astype(np.float32), sr
    )


def test_music_layout(tmp_path):
    for name in ("violin", "acoustic_guitar"):
        _write(tmp_path / name / "clip1.wav")
    items = music_items(tmp_path)
    assert {i.label for i in items} == {"violin", "acoustic guitar"}
    wave, caption, label = AudioCaptionDataset(items, 8000, 8000)[0]
    assert wave.shape == (8000,) and caption.startswith("the sound of")


def test_vggsound_layout(tmp_path):
    (tmp_path / "vggsound.csv").write_text("abc,30,dog barking,train\nxyz,0,cat meowing,test\n")
    _write(tmp_path / "audio" / "abc_000030.wav")
    items = vggsound_items(tmp_path, "train")
    assert len(items) == 1 and items[0].label == "dog barking"
    assert AudioCaptionDataset(items, 8000, 4000)[0][0].shape == (4000,)


def test_audiocaps_layout_skips_missing_and_corrupt_files(tmp_path, caplog):
    (tmp_path / "train.csv").write_text(
        "audiocap_id,youtube_id,start_time,caption\n"
        "1,aaa,10,A dog barks\n2,bbb,20,Rain falls\n3,ccc,0,A cat meows\n"
    )
    _write(tmp_path / "audio" / "train" / "aaa_10.wav")
    (tmp_path / "audio" / "train" / "bbb_20.wav").write_bytes(b"not audio")
    data = AudioCaptionDataset(audiocaps_items(tmp_path), 8000, 4000)
    captions = [data[i][1] for i in range(3)]
    assert captions == ["A dog barks"] * 3
    assert "bbb_20.wav" in caplog.text and "ccc_0.wav" in caplog.text
    assert sum("bbb_20.wav" in r.getMessage() for r in caplog.records) == 1  # reported once


def test_clotho_layout(tmp_path):
    (tmp_path / "clotho_captions_development.csv").write_text(
        "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\nx.wav,a,b,c,d,e\n"
    )
    _write(tmp_path / "development" / "x.wav")
    items = clotho_items(tmp_path)
    assert items[0].captions == ("a", "b", "c", "d", "e")
    assert AudioCaptionDataset(items, 8000, 100)[0][1] in "abcde"


def test_render_workers_die_on_sigterm_even_under_the_cli_handler():
    """A forked worker inherits the CLI's SIGTERM handler (it raises): the pool's terminate() at
    the end of rendering then hung in a worker. The worker initializer restores the default."""
    import signal

    from wsas.cli import _stop as _terminate
    from wsas.data.synth import _WORKER, _init_worker, soundfont_path

    previous, threads = signal.signal(signal.SIGTERM, _terminate), torch.get_num_threads()
    try:
        _init_worker(soundfont_path(), 8000)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)
        torch.set_num_threads(threads)
        _WORKER.clear()


def _tone_clips(classes: int, per_class: int = 3, samples: int = 64) -> ClipSet:
    """Clips of class ``c`` are tones at FFT bin ``c + 1`` (a circular shift keeps the bin), of a
    random phase each."""
    phase = torch.rand(classes * per_class, 1, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(classes).repeat_interleave(per_class)
    t = torch.arange(samples) / samples
    waves = torch.cos(2 * torch.pi * ((labels[:, None] + 1) * t + phase))
    phrasings = [(f"a sound of class {int(c)}",) for c in labels]
    names = tuple(f"class {c}" for c in range(classes))
    return ClipSet(waves, labels, phrasings, names, 8000)


def test_repeat_classes_lets_the_mixtures_of_an_example_share_classes():
    from wsas.errors import WsasError

    clips = _tone_clips(5)  # 2 x 3 sources: too few classes for all-distinct examples
    with pytest.raises(WsasError, match="6 distinct classes needed"):
        sample_batch(clips, 4, 3, np.random.default_rng(0), groups=2)
    batch = sample_batch(clips, 200, 3, np.random.default_rng(0), groups=2, repeat_classes=True)
    assert batch.sources.shape == (200, 2, 3, 64)
    assert torch.allclose(batch.mixtures, batch.sources.sum(2))
    bins = torch.fft.rfft(batch.sources).abs().argmax(-1)  # (B, G, N): each source's tone
    assert torch.equal(bins, batch.labels + 1)  # a clip of its label's class
    for row in batch.labels:  # distinct within each mixture; 5 classes, 3 each: always shared
        assert all(len(set(mixture.tolist())) == 3 for mixture in row)
        assert set(row[0].tolist()) & set(row[1].tolist())
    with pytest.raises(WsasError, match="6 distinct classes needed"):
        sample_batch(clips, 1, 6, np.random.default_rng(0), repeat_classes=True)


def test_repeat_classes_shares_as_often_as_independent_draws_do():
    clips = _tone_clips(11)  # the music class set's size
    batch = sample_batch(clips, 2000, 4, np.random.default_rng(1), groups=2, repeat_classes=True)
    shared = np.mean([bool(set(row[0].tolist()) & set(row[1].tolist())) for row in batch.labels])
    assert shared == pytest.approx(1 - 35 / 330, abs=0.02)  # 1 - C(7,4) / C(11,4)
    distinct = sample_batch(clips, 200, 4, np.random.default_rng(1), groups=2)
    assert all(len(set(row.flatten().tolist())) == 8 for row in distinct.labels)


def test_only_the_testbed_preset_repeats_classes():
    assert PRESETS["testbed"].train_config("mix-and-separate").repeat_classes
    assert not any(
        p.train_config("mix-and-separate").repeat_classes
        for name, p in PRESETS.items()
        if name != "testbed"
    )
