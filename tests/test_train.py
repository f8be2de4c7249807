import json
import math

import pytest
import torch

from wsas.bundle import restore_training
from wsas.checkpoint import read_config
from wsas.clap import load_clap
from wsas.data.datasets import load_embedded
from wsas.data.mixing import CaptionedBatch
from wsas.errors import CheckpointError, WsasError
from wsas.presets import TrainConfig
from wsas.regimes import REGIMES, get_regime
from wsas.train import Trainer

UNET = {"channels": 4, "levels": 3, "convs_per_block": 1}


def make(smoke_corpus, smoke_clap, out, **overrides):
    config = TrainConfig(
        **{
            "mode": "weak",
            "sources": 2,
            "steps": 4,
            "batch_size": 4,
            "val_every": 2,
            "val_mixtures": 4,
            "unet": UNET,
            **overrides,
        }
    )
    train, val = load_embedded(smoke_corpus, "train"), load_embedded(smoke_corpus, "val")
    return Trainer(config, load_clap("tiny", smoke_clap), out, train, val)


@pytest.mark.parametrize("mode", REGIMES)
def test_every_regime_trains_and_checkpoints(mode, smoke_corpus, smoke_clap, tmp_path):
    trainer = make(
        smoke_corpus,
        smoke_clap,
        tmp_path,
        mode=mode,
        steps=2,
        clean_fraction=0.5 if mode == "semi" else 1.0,
    )
    record = trainer.run(progress=False)
    assert record["step"] == 2 and torch.isfinite(torch.tensor(record["loss"]))
    assert read_config(tmp_path / "checkpoint.safetensors")["train"]["mode"] == mode
    assert (tmp_path / "log.csv").read_text().count("\n") == 2


@pytest.mark.parametrize("mode", [*REGIMES, "supervised-snr"])
def test_every_regime_trains_and_validates_under_bf16_autocast_on_cpu(
    mode, smoke_corpus, smoke_clap, tmp_path
):
    loss = {"recon_loss": "snr"} if mode.endswith("-snr") else {}
    mode = mode.removesuffix("-snr")
    clean = {"clean_fraction": 0.5} if mode == "semi" else {}
    trainer = make(
        smoke_corpus, smoke_clap, tmp_path, mode=mode, steps=2, bf16=True, **loss, **clean
    )
    record = trainer.run(progress=False)
    assert torch.isfinite(torch.tensor(record["loss"]))
    assert trainer.history[-1]["val_si_sdr"] is not None


@pytest.mark.parametrize("sources", [3, 4])
def test_weak_trains_on_higher_order_mixtures(sources, smoke_corpus, smoke_clap, tmp_path):
    record = make(smoke_corpus, smoke_clap, tmp_path, sources=sources, steps=1, val_every=1).run(
        progress=False
    )
    assert record["step"] == 1


def test_kill_and_resume_reproduces_the_uninterrupted_run(
    smoke_corpus, smoke_clap, tmp_path, monkeypatch
):
    straight = make(smoke_corpus, smoke_clap, tmp_path / "a", mode="mix-and-separate")
    straight.run(progress=False)
    killed = make(smoke_corpus, smoke_clap, tmp_path / "b", mode="mix-and-separate")
    original, calls = killed.losses, {"n": 0}

    def kill_at_step_two():
        calls["n"] += 1
        if calls["n"] == 2:
            killed._on_signal(15, None)
        return original()

    monkeypatch.setattr(killed, "losses", kill_at_step_two)
    with pytest.raises(KeyboardInterrupt):
        killed.run(progress=False)
    resumed = make(smoke_corpus, smoke_clap, tmp_path / "b", mode="mix-and-separate")
    resumed.run(resume=True, progress=False)
    assert resumed.step == 4
    # the wall time counts both sittings; a finished run resumed trains nothing and keeps it
    assert resumed.seconds > killed.seconds > 0
    seconds = [h["seconds"] for h in resumed.history]
    assert seconds == sorted(seconds) and seconds[-1] <= resumed.seconds
    stored = read_config(tmp_path / "b" / "checkpoint.safetensors")["seconds"]
    assert killed.seconds < stored <= resumed.seconds
    again = make(smoke_corpus, smoke_clap, tmp_path / "b", mode="mix-and-separate")
    again.run(resume=True, progress=False)
    assert stored <= again.seconds < stored + 0.05
    assert resumed.history[-1]["loss"] == pytest.approx(straight.history[-1]["loss"], rel=1e-4)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.allclose(a, b, atol=1e-5)


def test_resume_with_another_config_is_refused(smoke_corpus, smoke_clap, tmp_path):
    make(smoke_corpus, smoke_clap, tmp_path, mode="supervised", steps=1, val_every=1).run(
        progress=False
    )
    with pytest.raises(CheckpointError, match=r"different configuration \(lr differ"):
        make(
            smoke_corpus, smoke_clap, tmp_path, mode="supervised", steps=1, val_every=1, lr=0.5
        ).run(resume=True, progress=False)
    wider = {**UNET, "channels": UNET["channels"] * 2}
    with pytest.raises(CheckpointError, match=r"\(unet.channels differ"):
        make(
            smoke_corpus, smoke_clap, tmp_path, mode="supervised", steps=1, val_every=1, unet=wider
        ).run(resume=True, progress=False)
    # another TinyCLAP size: other query embeddings, another critic
    from wsas.clap.tiny import SIZES, TinyClap

    config = TrainConfig(
        mode="supervised", steps=1, val_every=1, batch_size=4, val_mixtures=4, unet=UNET
    )
    lean = TinyClap({"sample_rate": 8000, **SIZES["lean"]})
    train = load_embedded(smoke_corpus, "train")
    with pytest.raises(CheckpointError, match=r"\(clap.channels, clap.hop, clap.n_mels differ"):
        Trainer(config, lean, tmp_path, train).run(resume=True, progress=False)


def test_nan_loss_stops_with_clear_message_and_keeps_checkpoint(
    smoke_corpus, smoke_clap, tmp_path, monkeypatch
):
    trainer = make(smoke_corpus, smoke_clap, tmp_path, mode="supervised", val_every=1)
    original = trainer.losses
    calls = {"n": 0}

    def poisoned():
        calls["n"] += 1
        parts = original()
        return {"total": parts["total"] * float("nan")} if calls["n"] == 2 else parts

    monkeypatch.setattr(trainer, "losses", poisoned)
    with pytest.raises(WsasError, match="loss became nan at step 2"):
        trainer.run(progress=False)
    assert read_config(tmp_path / "checkpoint.safetensors")["step"] == 1


def test_signal_saves_a_checkpoint_and_stops(smoke_corpus, smoke_clap, tmp_path, monkeypatch):
    trainer = make(smoke_corpus, smoke_clap, tmp_path, mode="supervised", val_every=100)
    original = trainer.losses

    def interrupted():
        trainer._on_signal(15, None)  # as if SIGTERM arrived during the step
        return original()

    monkeypatch.setattr(trainer, "losses", interrupted)
    with pytest.raises(KeyboardInterrupt, match="checkpoint saved"):
        trainer.run(progress=False)
    assert read_config(tmp_path / "checkpoint.safetensors")["step"] == 1


@pytest.mark.parametrize("mode", ["weak", "pit", "mixit"])
def test_regimes_without_a_waveform_reconstruction_refuse_the_snr_loss(
    mode, smoke_corpus, smoke_clap, tmp_path
):
    with pytest.raises(WsasError, match=f"--recon-loss snr: --mode {mode} trains with magnitude"):
        make(smoke_corpus, smoke_clap, tmp_path, mode=mode, recon_loss="snr")


def test_bad_options_are_user_errors():
    with pytest.raises(WsasError, match="unknown mode 'magic'"):
        get_regime("magic")
    with pytest.raises(WsasError, match="clean-fraction"):
        TrainConfig(mode="semi", clean_fraction=0)


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(smoke_corpus, smoke_clap, tmp_path):
    import json
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "wsas.cli",
        "train",
        "--mode",
        "supervised",
        "--preset",
        "smoke",
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--data",
        str(smoke_corpus),
        "--out",
        str(tmp_path / "run"),
        "--clap-checkpoint",
        str(smoke_clap),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    final = json.loads((tmp_path / "run" / "train.json").read_text())["final"]
    assert final["world_size"] == 2 and final["step"] == 3
    assert read_config(tmp_path / "run" / "checkpoint.safetensors")["step"] == 3


@pytest.mark.parametrize("mode", ["semi", "weak"])
def test_grid_crop_trains_on_windows_that_fill_the_unets_grid(
    mode, smoke_corpus, smoke_clap, tmp_path
):
    cropped = make(
        smoke_corpus, smoke_clap, tmp_path / "crop", mode=mode, clean_fraction=0.5, grid_crop=True
    )
    whole = make(smoke_corpus, smoke_clap, tmp_path / "whole", mode=mode, clean_fraction=0.5)
    # smoke: 8192-sample clips, 65 frames; levels 3: 64 frames, 8191 samples at most
    for batch in (cropped.mixture_batch(2), cropped.clean_batch()):
        assert batch.sources.shape[-1] == 8191
    assert whole.mixture_batch(2).mixtures.shape[-1] == 8192
    recordings = CaptionedBatch(torch.randn(2, 2, 8192), [["a dog barks", "rain"]] * 2)
    assert cropped._grid_crop(recordings).mixtures.shape[-1] == 8191
    assert cropped.val.mixtures.shape[-1] == 8192  # validation separates whole clips
    record = cropped.run(progress=False)
    assert record["step"] == 4 and math.isfinite(record["loss"])
    assert any(row["val_si_sdr"] is not None for row in cropped.history)


def test_a_grid_crop_is_a_window_of_the_drawn_clips(smoke_corpus, smoke_clap, tmp_path):
    cropped = make(smoke_corpus, smoke_clap, tmp_path / "a", mode="supervised", grid_crop=True)
    whole = make(smoke_corpus, smoke_clap, tmp_path / "b", mode="supervised")
    # the same seed draws the same clips; each crop is one of their 2 windows of 8191 samples,
    # and over 12 batches both occur
    starts = set()
    for _ in range(12):
        full, window = whole.clean_batch().sources, cropped.clean_batch().sources
        starts |= {s for s in range(2) if torch.equal(full[..., s : s + 8191], window)}
        whole.rng.integers(0, 2)  # the draw of the crop's start, to keep the two streams aligned
    assert starts == {0, 1}


@pytest.fixture
def audiocaps_like(smoke_corpus, tmp_path):
    """An AudioCaps-layout folder of real recordings made from the smoke corpus: each file a
    2-source mixture, described only by its caption."""
    import numpy as np

    from wsas.audio import save
    from wsas.data.datasets import load_embedded
    from wsas.data.mixing import sample_batch

    batch = sample_batch(load_embedded(smoke_corpus, "train"), 6, 2, np.random.default_rng(0))
    rows = ["audiocap_id,youtube_id,start_time,caption"]
    for i, (mixture, caption) in enumerate(zip(batch.mixtures[:, 0], batch.captions)):
        save(tmp_path / "audiocaps" / "audio" / "train" / f"clip{i}_0.wav", mixture, 8000)
        rows.append(f'{i},clip{i},0,"{caption[0]}"')
    (tmp_path / "audiocaps" / "train.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "audiocaps", [c[0] for c in batch.captions]


@pytest.mark.parametrize("mode", ["weak", "mix-and-separate", "mixit"])
def test_weak_regimes_train_on_captioned_recordings(
    mode, audiocaps_like, smoke_corpus, smoke_clap, tmp_path
):
    from wsas.data.datasets import load_recordings

    root, captions = audiocaps_like
    recordings = load_recordings(f"audiocaps:{root}", 8000, 8192)
    config = TrainConfig(mode=mode, steps=2, batch_size=3, val_every=2, val_mixtures=4, unet=UNET)
    trainer = Trainer(config, load_clap("tiny", smoke_clap), tmp_path / "run", recordings)
    batch = trainer.mixture_batch(groups=2)
    assert batch.mixtures.shape == (3, 2, 8192) and {
        c for row in batch.captions for c in row
    } <= set(captions)
    record = trainer.run(progress=False)
    assert (
        record["step"] == 2
        and record["val_si_sdr"] is None
        and torch.isfinite(torch.tensor(record["loss"]))
    )
    # with a corpus beside the recordings, validation runs on its clean pairs
    val = load_embedded(smoke_corpus, "val")
    clap = load_clap("tiny", smoke_clap)
    validated = Trainer(config, clap, tmp_path / "run2", recordings, val).run(progress=False)
    assert isinstance(validated["val_si_sdr"], float)


def test_regimes_that_need_clean_sources_refuse_recordings(audiocaps_like, smoke_clap, tmp_path):
    from wsas.data.datasets import load_recordings

    recordings = load_recordings(f"audiocaps:{audiocaps_like[0]}", 8000, 8192)
    with pytest.raises(WsasError, match="--mode supervised needs clean sources"):
        Trainer(
            TrainConfig(mode="supervised", unet=UNET),
            load_clap("tiny", smoke_clap),
            tmp_path,
            recordings,
        )
    with pytest.raises(WsasError, match="expected LAYOUT:FOLDER"):
        load_recordings("audiocaps", 8000, 8192)


def test_cli_trains_weak_on_recordings_and_names_missing_data(
    audiocaps_like, smoke_clap, tmp_path, capsys
):
    from wsas.cli import main

    out = tmp_path / "run"
    main(
        [
            "train",
            "--mode",
            "weak",
            "--preset",
            "smoke",
            "--steps",
            "1",
            "--batch-size",
            "2",
            "--out",
            str(out),
            "--recordings",
            f"audiocaps:{audiocaps_like[0]}",
            "--clap-checkpoint",
            str(smoke_clap),
            "--grid-crop",
        ]
    )
    assert (
        json.loads(capsys.readouterr().out)["step"] == 1
        and (out / "checkpoint.safetensors").is_file()
    )
    assert read_config(out / "checkpoint.safetensors")["train"]["grid_crop"] is True
    assert main(["train", "--mode", "weak", "--out", str(out)]) == 2
    assert (
        capsys.readouterr().err
        == "wsas: error: give --data CORPUS, --recordings LAYOUT:FOLDER, or both\n"
    )


def test_learning_rate_warms_up_then_decays_to_five_percent():
    config = TrainConfig(mode="supervised", steps=100, lr=1e-3, warmup=0.1)
    rates = [config.learning_rate(s) for s in range(100)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))  # never rises after warm-up
    assert rates[-1] == pytest.approx(5e-5, rel=1e-3)
    constant = TrainConfig(mode="supervised", steps=100, lr=1e-3, schedule="constant")
    assert {constant.learning_rate(s) for s in range(100)} == {1e-3}


def test_a_time_budget_schedules_the_learning_rate_by_the_time_trained():
    config = TrainConfig(mode="supervised", steps=3, minutes=1.0, lr=1e-3, warmup=0.1)
    assert config.learning_rate(0, 0.0) == pytest.approx(1e-5)  # from 1 % of lr
    assert config.learning_rate(0, 3.0) == pytest.approx(5e-4)  # the step count plays no part
    assert config.learning_rate(99, 6.0) == pytest.approx(1e-3)
    assert config.learning_rate(99, 33.0) == pytest.approx(5.25e-4)  # half-way down the cosine
    assert config.learning_rate(99, 60.0) == config.learning_rate(99, 90.0) == pytest.approx(5e-5)
    for minutes in (0, -1, math.inf, math.nan):
        with pytest.raises(WsasError, match="--minutes must be positive"):
            TrainConfig(mode="supervised", minutes=minutes)
    for warmup in (1.0, -0.1):  # a whole budget of warm-up would leave no decay to divide by
        with pytest.raises(WsasError, match=r"warmup must be a fraction in \[0, 1\)"):
            TrainConfig(mode="supervised", minutes=1.0, warmup=warmup)


def test_a_time_budget_trains_until_it_runs_out_and_resumes_its_clock(
    smoke_corpus, smoke_clap, tmp_path, monkeypatch, capsys
):
    import types

    import wsas.train

    clock = iter(range(10**6))  # every reading of the trainer's clock: one second later
    monkeypatch.setattr(wsas.train, "time", types.SimpleNamespace(time=lambda: next(clock)))
    trainer = make(smoke_corpus, smoke_clap, tmp_path, mode="pit", minutes=0.5, steps=1)
    trainer.run(progress=False)
    seconds = [h["seconds"] for h in trainer.history]
    assert trainer.step > 1 and seconds == sorted(seconds)  # minutes, not steps, decide
    assert 20 <= seconds[-1] <= 30  # the last validation starts in time: no room for another
    assert trainer.seconds <= 35  # the clock's few readings after it (a real one: its saves)
    assert trainer.history[-1]["step"] == trainer.step  # the last step is validated
    assert trainer.history[-1]["lr"] < 0.2 * trainer.cfg.lr  # far down the schedule
    steps = trainer.step
    again = make(smoke_corpus, smoke_clap, tmp_path, mode="pit", minutes=0.5, steps=1)
    again.run(resume=True, progress=False)  # its budget is spent: nothing more
    assert again.step == steps
    longer = make(smoke_corpus, smoke_clap, tmp_path, mode="pit", minutes=1.0, steps=1)
    with pytest.raises(CheckpointError, match="minutes"):
        longer.run(resume=True, progress=False)
    # validations at least every quarter of the budget, however far apart val_every puts them
    sparse = make(
        smoke_corpus, smoke_clap, tmp_path / "sparse", mode="pit", minutes=0.5, val_every=99
    )
    sparse.run(progress=False)
    assert len(sparse.history) >= 3 and sparse.step < 99
    from wsas.cli import main

    assert main(["train", "--mode", "pit", "--minutes", "0", "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == "wsas: error: --minutes must be positive, got 0.0\n"
    both = ["--minutes", "1", "--steps", "10"]
    assert main(["train", "--mode", "pit", *both, "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == "wsas: error: give --steps or --minutes, not both\n"


@pytest.mark.parametrize("seed, same", [(0, True), (1, False)])
def test_the_seed_decides_the_initial_weights(smoke_corpus, smoke_clap, tmp_path, seed, same):
    first = make(smoke_corpus, smoke_clap, tmp_path / "a", seed=0)
    torch.randn(100)  # whatever ran before must not matter
    second = make(smoke_corpus, smoke_clap, tmp_path / "b", seed=seed)
    equal = all(
        torch.equal(a, b) for a, b in zip(first.model.parameters(), second.model.parameters())
    )
    assert equal == same


def test_history_logs_every_loss_term_and_the_best_model_is_kept(
    smoke_corpus, smoke_clap, tmp_path
):
    trainer = make(smoke_corpus, smoke_clap, tmp_path, mode="weak", steps=4, val_every=1)
    record = trainer.run(progress=False)
    assert set(trainer.history[-1]["terms"]) == {"total", "mixture", "consistency", "similarity"}
    vals = [h["val_si_sdr"] for h in trainer.history]
    assert record["best_val_si_sdr"] == pytest.approx(max(vals), abs=1e-3)
    best = read_config(tmp_path / "best.safetensors")
    assert best["step"] == record["best_step"] == trainer.history[vals.index(max(vals))]["step"]
    assert record["last_quarter_gain_db"] == pytest.approx(vals[-1] - vals[2], abs=1e-3)
    header = (tmp_path / "log.csv").read_text().splitlines()[0].split(",")
    assert {"lr", "mixture", "consistency", "similarity", "logit_scale"} <= set(header)
    ablation = make(smoke_corpus, smoke_clap, tmp_path / "no-clap", steps=2, sim_weight=0.0)
    ablation.run(progress=False)  # the CLAP-term ablation trains on reconstruction alone
    assert set(ablation.history[-1]["terms"]) == {"total", "mixture", "consistency"}


def test_semi_mixes_only_clips_outside_its_clean_subset(smoke_corpus, smoke_clap, tmp_path):
    trainer = make(smoke_corpus, smoke_clap, tmp_path, mode="semi", clean_fraction=0.25)
    clean = {w.numpy().tobytes() for w in trainer.clean.waves}
    pool = {w.numpy().tobytes() for w in trainer.pool.waves}
    assert clean and pool and not clean & pool
    assert len(trainer.clean) + len(trainer.pool) == len(trainer.train_clips)
    weak = make(smoke_corpus, smoke_clap, tmp_path / "weak", mode="weak")
    assert weak.pool is weak.train_clips


def test_a_fresh_run_replaces_an_earlier_runs_log_and_best_model(
    smoke_corpus, smoke_clap, tmp_path
):
    for _ in range(2):
        make(smoke_corpus, smoke_clap, tmp_path, mode="supervised", steps=2, val_every=1).run(
            progress=False
        )
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 3  # header + 2 rows
    assert json.loads((tmp_path / "train.json").read_text())["final"]["step"] == 2


@pytest.mark.parametrize("mode", ["supervised", "mixit", "weak"])
def test_normalised_levels_make_the_loss_the_same_at_any_input_level(
    mode, smoke_corpus, smoke_clap, tmp_path
):
    import dataclasses

    import numpy as np

    def loss_at(trainer, gain: float) -> float:
        """The loss of the same batch (same draws) with every source ``gain`` times louder."""
        trainer.rng = np.random.default_rng(0)
        for name in ("mixture_batch", "clean_batch"):
            draw = getattr(type(trainer), name)

            def louder(*args, _draw=draw, **kwargs):
                batch = _draw(trainer, *args, **kwargs)
                return dataclasses.replace(batch, sources=batch.sources * gain)

            setattr(trainer, name, louder)
        with torch.no_grad():
            return float(trainer.losses()["total"])

    for normalise in (True, False):
        trainer = make(smoke_corpus, smoke_clap, tmp_path, mode=mode, normalise_levels=normalise)
        quiet, loud = loss_at(trainer, 1.0), loss_at(trainer, 10.0)
        assert (quiet == pytest.approx(loud, rel=1e-3)) == normalise, (normalise, quiet, loud)


def test_clap_seconds_crops_what_the_critic_hears(smoke_corpus, smoke_clap, tmp_path):
    trainer = make(smoke_corpus, smoke_clap, tmp_path, clap_seconds=0.5)
    heard = []
    embed = trainer.clap.embed_audio
    trainer.clap.embed_audio = lambda wave, sr: heard.append(wave.shape[-1]) or embed(wave, sr)
    trainer.losses()["total"].backward()
    assert heard == [4000]  # 0.5 s at 8 kHz, for every clause estimate at once
    with pytest.raises(WsasError, match="--clap-seconds must be positive"):
        TrainConfig("weak", clap_seconds=0)
    with pytest.raises(WsasError, match="--clap-seconds: --mode pit has no clause estimates"):
        TrainConfig("pit", clap_seconds=1.0)  # nothing for a critic to hear
    with pytest.raises(WsasError, match="shorter than one sample at 8000 Hz"):
        make(smoke_corpus, smoke_clap, tmp_path / "short", clap_seconds=1e-5)
    with pytest.raises(WsasError, match="--fp32-critic: --mode pit has no clause estimates"):
        TrainConfig("pit", critic_bf16=False)


def test_a_run_resumes_only_with_the_critic_precision_it_began_with(
    smoke_corpus, smoke_clap, tmp_path, monkeypatch
):
    import wsas.train

    monkeypatch.setattr(wsas.train, "native_bf16", lambda device: True)
    make(smoke_corpus, smoke_clap, tmp_path, steps=2).run(progress=False)  # critic in bf16
    assert read_config(tmp_path / "checkpoint.safetensors")["critic_bf16"] is True
    fp32 = make(smoke_corpus, smoke_clap, tmp_path, steps=2, critic_bf16=False)
    with pytest.raises(CheckpointError, match=r"\(the critic's precision \(--fp32-critic\) differ"):
        fp32.run(resume=True, progress=False)
    asked = make(smoke_corpus, smoke_clap, tmp_path, steps=2, critic_bf16=True)
    assert asked.run(resume=True, progress=False)["step"] == 2  # as resolved, not as asked
    # a run begun where bf16 is emulated (the critic in float32) resumes with --fp32-critic
    monkeypatch.setattr(wsas.train, "native_bf16", lambda device: False)
    make(smoke_corpus, smoke_clap, tmp_path / "old", steps=2).run(progress=False)
    monkeypatch.setattr(wsas.train, "native_bf16", lambda device: True)
    with pytest.raises(CheckpointError, match="the critic's precision"):
        make(smoke_corpus, smoke_clap, tmp_path / "old", steps=2).run(resume=True, progress=False)
    resumed = make(smoke_corpus, smoke_clap, tmp_path / "old", steps=2, critic_bf16=False)
    assert resumed.run(resume=True, progress=False)["step"] == 2
    # a supervised run has no critic to hear in bf16: nothing to keep
    supervised = make(smoke_corpus, smoke_clap, tmp_path / "sup", mode="supervised", steps=1)
    assert supervised.critic_in_bf16 is False


@pytest.mark.parametrize(
    "critic_bf16, bf16, native, bf16_audio, heard_in",
    [
        (None, None, True, True, torch.bfloat16),  # the default where bf16 is native
        (None, None, False, True, torch.float32),  # ... and where it is emulated
        (None, None, True, False, torch.float32),  # a critic not checked in bf16 (LAION)
        (None, True, False, True, torch.bfloat16),  # the whole forward pass in bf16 asked for
        (False, None, True, True, torch.float32),  # --fp32-critic
        (False, True, True, True, torch.float32),
        (True, None, False, False, torch.bfloat16),
    ],
)
def test_the_critic_hears_in_bf16_where_asked_or_native(
    critic_bf16, bf16, native, bf16_audio, heard_in, smoke_corpus, smoke_clap, tmp_path, monkeypatch
):
    import wsas.train

    monkeypatch.setattr(wsas.train, "native_bf16", lambda device: native)
    trainer = make(smoke_corpus, smoke_clap, tmp_path, critic_bf16=critic_bf16, bf16=bf16)
    trainer.clap.bf16_audio = bf16_audio
    heard = []
    first_conv = trainer.clap.audio_tower[0][0]
    first_conv.register_forward_hook(lambda module, args, out: heard.append(out.dtype))
    with trainer.autocast():
        loss = trainer.losses()["total"]
    loss.backward()
    assert heard == [heard_in] and torch.isfinite(loss)
    assert trainer.critic_in_bf16 == (heard_in == torch.bfloat16)
    if critic_bf16 is None and bf16 is None and bf16_audio:  # a run records what it resolved
        trainer.cfg.steps = 1
        trainer.run(progress=False)
        recorded = json.loads((tmp_path / "train.json").read_text())
        assert recorded["critic_bf16"] is native and recorded["config"]["critic_bf16"] is None
    assert all(p.grad is None for p in trainer.clap.parameters())  # the critic stays frozen


@pytest.mark.parametrize("mode", ["weak", "semi"])
def test_a_clause_level_target_trains_and_weak_logs_it(mode, smoke_corpus, smoke_clap, tmp_path):
    for target in ("floor", "energy"):
        trainer = make(smoke_corpus, smoke_clap, tmp_path / target, mode=mode, clause_level=target)
        trainer.run(progress=False)
        assert trainer.step == trainer.cfg.steps and math.isfinite(trainer.history[-1]["loss"])
        terms = trainer.history[-1]["terms"]
        assert target in terms if mode == "weak" else f"weak_{target}" in terms  # semi's weak half
    with pytest.raises(WsasError, match="--clause-level must be floor or energy, got 'loud'"):
        TrainConfig("weak", clause_level="loud")
    with pytest.raises(WsasError, match="--mode supervised has no clause estimates"):
        TrainConfig("supervised", clause_level="floor")
    with pytest.raises(WsasError, match="weight needs --clause-level; --clause-floor needs --c"):
        TrainConfig("weak", clause_level_weight=2.0, clause_floor_db=-6.0)
    with pytest.raises(WsasError, match="^--clause-floor needs --clause-level floor$"):
        TrainConfig("weak", clause_level="energy", clause_floor_db=-6.0)
    with pytest.raises(WsasError, match="--clause-level-weight must be > 0"):
        TrainConfig("weak", clause_level="floor", clause_level_weight=0)
    with pytest.raises(WsasError, match="--clause-floor must be below 0 dB"):
        TrainConfig("weak", clause_level="floor", clause_floor_db=3)


@pytest.mark.slow
def test_a_compiled_unet_computes_the_eager_loss_and_saves_the_same_weights(
    smoke_corpus, smoke_clap, tmp_path
):
    config = TrainConfig(mode="supervised", steps=2, batch_size=4, unet=UNET, conditioning="deep")
    train = load_embedded(smoke_corpus, "train")
    clap = load_clap("tiny", smoke_clap)
    eager = Trainer(config, clap, tmp_path / "eager", train)
    compiled = Trainer(config, clap, tmp_path / "compiled", train, compile=True)
    # the same seed: the same weights and the same first batch, through TorchInductor's kernels
    torch.testing.assert_close(
        compiled.losses()["total"], eager.losses()["total"], rtol=1e-4, atol=1e-5
    )
    compiled.run(progress=False)
    # the checkpoint it saves loads into the eager model and optimizer, and resumes eagerly
    restore_training(tmp_path / "compiled" / "checkpoint.safetensors", eager.model, eager.opt)
    for name, weight in compiled.model.state_dict().items():
        assert torch.equal(eager.model.state_dict()[name], weight), name


def test_bf16_autocast_on_cpu_is_opt_in_and_computes_nearly_the_fp32_loss(
    smoke_corpus, smoke_clap, tmp_path
):
    from dataclasses import replace

    train, val = (load_embedded(smoke_corpus, split) for split in ("train", "val"))
    clap = load_clap("tiny", smoke_clap)
    base = TrainConfig(mode="supervised", steps=1, batch_size=4, unet=UNET, conditioning="late")
    fp32 = Trainer(base, clap, tmp_path / "fp32", train, val, device="cpu")
    bf16 = Trainer(replace(base, bf16=True), clap, tmp_path / "bf16", train, val, device="cpu")
    losses = []
    for trainer in (fp32, bf16):  # the same seed: the same weights and the same first batch
        with trainer.autocast():
            losses.append(trainer.losses()["total"])
    assert losses[0] != losses[1]  # bf16 did round
    torch.testing.assert_close(losses[1], losses[0], rtol=0.05, atol=0.02)
    # a query first embedded inside autocast is cached in fp32 all the same, so the fp32
    # validation between steps can use it
    with bf16.autocast():
        assert bf16.embed(["a dog barks"]).dtype == torch.float32
    bf16.run(progress=False)
    assert bf16.history[-1]["val_si_sdr"] is not None
    assert next(bf16.model.parameters()).dtype == torch.float32  # weights stay fp32
    resumed = Trainer(base, clap, tmp_path / "bf16", train, val, device="cpu")  # fp32: refused
    with pytest.raises(CheckpointError, match="bf16 differ"):
        resumed.run(resume=True, progress=False)


@pytest.mark.parametrize("mode", ["supervised", "weak", "pit"])
def test_cross_attention_trains_and_validates(mode, smoke_corpus, smoke_clap, tmp_path):
    trainer = make(smoke_corpus, smoke_clap, tmp_path, mode=mode, steps=2, conditioning="cross")
    assert trainer.model.config.cond_dim == trainer.clap.token_dim
    record = trainer.run(progress=False)
    assert record["step"] == 2 and torch.isfinite(torch.tensor(record["loss"]))
    assert read_config(tmp_path / "checkpoint.safetensors")["train"]["conditioning"] == "cross"
    attention = trainer.model.unet.cross[0].attn.out_proj.weight
    assert attention.abs().sum() > 0  # the attention trained away from its zero start
    if mode == "weak":  # the bundle separates by token states too
        from wsas.separate import Separator

        separator = Separator.from_checkpoint(tmp_path / "checkpoint.safetensors", "cpu")
        stems = separator(torch.randn(8000) * 0.1, 8000, ["a dog barks", "a piano plays"])
        assert [s.shape for s in stems.values()] == [(8000,), (8000,)]


def test_a_run_from_before_the_cross_attention_fields_resumes(smoke_corpus, smoke_clap, tmp_path):
    from wsas.checkpoint import load_checkpoint, save_checkpoint

    make(smoke_corpus, smoke_clap, tmp_path, mode="supervised", steps=1, val_every=1).run(
        progress=False
    )
    path = tmp_path / "checkpoint.safetensors"
    tensors, config = load_checkpoint(path)
    for field in ("heads", "attn_levels", "max_tokens"):  # what older checkpoints lack
        del config["unet"][field]
    save_checkpoint(path, tensors, config)
    record = make(smoke_corpus, smoke_clap, tmp_path, mode="supervised", steps=1, val_every=1).run(
        resume=True, progress=False
    )
    assert record["step"] == 1  # resumed (finished), not refused as another configuration
