import json

import pytest
import torch

from wsas.lab.bench import shared_encoder_speedup, table
from wsas.regimes import REGIMES


def test_shared_encoder_benchmark_reports_both_paths_and_their_ratio():
    result = shared_encoder_speedup("smoke", "late", batch=2)
    # the speed-up comes from the unrounded timings; the reported ones are rounded to 1 ms
    loop, batched = result["one_pass_per_query_step_s"], result["batched_step_s"]
    low, high = (loop - 5e-4) / (batched + 5e-4), (loop + 5e-4) / (batched - 5e-4)
    assert low - 0.005 <= result["speedup"] <= high + 0.005
    assert result["queries_per_example"] == 4 and result["conditioning"] == "late"
    line = table({"preset": "smoke", "x": result}).splitlines()[1]
    assert all(f"{k}={v}" in line for k, v in result.items())


def test_bss_eval_speed_reports_both_backends_and_their_agreement():
    from wsas.lab.bench import bss_eval_speed

    report = bss_eval_speed(seconds=(0.25,), n_fast=2, n_mir=1)["0.25s"]
    assert report["max_abs_diff_db"] < 0.01
    assert 3 < report["mean_sdr_db"] < 20  # leaky, noisy estimates like a trained separator's


def test_resample_section_reports_both_rates_and_their_ratio():
    from wsas.lab.bench import resample_cost

    report = resample_cost("smoke", rates=(16000, 16001))
    a, b = report["resample_16000"], report["resample_16001"]
    assert (a["rate"], b["rate"]) == (16000, 16001)
    ratio = report["resample_ratio_16001_over_16000"]
    for key in ("round_trip_ms", "separate_1s_ms", "peak_rss_mb"):
        assert a[key] > 0 and abs(ratio[key] - b[key] / a[key]) < 0.01 + 0.06 * ratio[key]


@pytest.mark.parametrize("mode", ["supervised", "weak"])
def test_step_breakdown_accounts_for_the_step(mode, smoke_corpus, smoke_clap, tmp_path):
    from wsas.clap import load_clap
    from wsas.data.datasets import load_embedded
    from wsas.lab.bench import PHASES, step_breakdown
    from wsas.presets import get_preset
    from wsas.train import Trainer

    config = get_preset("smoke").train_config(mode, batch_size=4)
    train = load_embedded(smoke_corpus, "train")
    trainer = Trainer(config, load_clap("tiny", smoke_clap), tmp_path, train)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    report = step_breakdown(trainer, steps=2)
    assert set(report) == {"step_ms", *PHASES}
    assert all(report[p] >= 0 for p in PHASES)
    for phase in ("data", "stft", "separator_forward", "separator_backward", "optimizer"):
        assert report[phase] > 0, phase
    uses_clap = mode == "weak"  # only the weak objective hears its estimates through CLAP
    assert (report["clap_forward"] > 0) == uses_clap and (report["istft"] > 0) == uses_clap
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


@pytest.mark.slow
@pytest.mark.parametrize("mode", REGIMES)
def test_one_paper_size_step_of_every_regime_runs_on_cpu(mode, tmp_path_factory):
    from wsas.lab.bench import paper_trainer
    from wsas.presets import get_preset

    p = get_preset("paper")
    root = tmp_path_factory.getbasetemp() / "paper_corpus"  # rendered once for all regimes
    trainer = paper_trainer(mode, root, batch=2)
    assert trainer.model.unet.config.levels == p.unet_levels == 7
    loss = trainer.losses()["total"]
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    grads = [q.grad for q in trainer.model.parameters() if q.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    trainer.model.eval()
    with torch.no_grad():
        masks, spec = trainer.model.masks(torch.zeros(1, p.clip_samples), trainer.slots(1))
    assert spec.shape == (1, p.n_fft // 2 + 1, p.clip_samples // p.hop + 1)
    assert masks.shape == (1, trainer.n_slots, *spec.shape[-2:])


def test_paper_step_reports_flops_memory_and_a_gpu_estimate():
    from wsas.lab.bench import GPU_TFLOPS, gpu_estimate
    from wsas.presets import get_preset

    p = get_preset("paper")
    estimate = gpu_estimate({"weak": {"gflop_per_example": 100.0}})
    low, high = estimate["hours_range"]["weak"]
    expected = 100e9 * p.batch_size * p.train_steps / 3600 / 1e12
    assert low == pytest.approx(expected / GPU_TFLOPS[1], abs=0.05)
    assert high == pytest.approx(expected / GPU_TFLOPS[0], abs=0.05)


def test_unknown_bench_section_is_a_one_line_error():
    from wsas.errors import WsasError
    from wsas.lab.bench import run_bench

    with pytest.raises(WsasError, match="unknown bench section"):
        run_bench("smoke", sections=["steps", "warp"])


@pytest.mark.slow
def test_before_after_times_a_git_revision_against_this_tree():
    from wsas.lab.bench import before_after

    cells = (("supervised", "late", {}), ("weak", "late", {"critic": "lean"}))
    report = before_after("HEAD", cells=cells, steps=1, rounds=1)
    for key in ("supervised-late", "weak-late-critic=lean"):  # overrides name the row
        row = report[key]
        assert len(report["before"]) >= 7 and row["before_s"] > 0 and row["after_s"] > 0
        assert row["speedup"] == pytest.approx(row["before_s"] / row["after_s"], rel=0.02)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--convergence", "five"], "--convergence 'five': give minutes like 5,15"),
        (["--convergence", "5,nan"], "--convergence '5,nan': give minutes like 5,15"),
        (["--only", "", "--lr", "0"], "--lr applies to the convergence runs"),
        (["--only", "", "--convergence", "5", "--lr", "inf"], "--lr must be positive, got inf"),
        (["--only", "", "--bf16"], "--bf16 applies to the convergence runs: give --convergence"),
        (["--only", "", "--seeds", "1"], "--seeds applies to the convergence runs"),
        (["--only", "", "--batch-size", "8"], "--batch-size applies to the convergence runs"),
        (["--only", "", "--grid-crop"], "--grid-crop applies to the convergence runs"),
        (["--only", "", "--convergence", "5", "--lr", "0"], "--lr must be positive, got 0"),
        (["--only", "", "--against", "no-such-rev"], "--against no-such-rev: not a git revision"),
    ],
)
def test_bad_bench_options_are_one_line_errors(args, message, tmp_path, capsys):
    from wsas.cli import main

    assert main(["bench", "--out", str(tmp_path / "b.json"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b.json").exists()


def test_a_worker_that_dies_is_a_one_line_error_not_a_hang():
    import os

    from wsas.errors import WsasError
    from wsas.lab.bench import in_fresh_process

    # os._exit(3, queue) fails with a TypeError in the child, which then exits with code 1
    with pytest.raises(WsasError, match=r"^the test worker did not finish \(worker exit code 1\)$"):
        in_fresh_process(os._exit, 3, what="the test worker", timeout=600)


def test_sections_kept_from_an_earlier_bench_keep_their_own_stamp(tmp_path):
    import json

    from wsas.cli import main

    out = tmp_path / "bench.json"
    old = {"git_commit": "abc1234", "date": "2026-01-01T00:00:00Z"}
    out.write_text(json.dumps({"preset": "tiny", "steps": {"x": 1}, "provenance": old}))
    assert main(["bench", "--preset", "smoke", "--only", "", "--out", str(out)]) == 0
    first = json.loads(out.read_text())
    stamp = first["section_provenance"]["steps"]
    assert first["steps"] == {"x": 1} and stamp["git_commit"] == "abc1234"
    assert (
        stamp["measured_by_this_run_or_earlier"] and first["provenance"]["git_commit"] != "abc1234"
    )
    assert main(["bench", "--preset", "smoke", "--only", "", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["section_provenance"]["steps"] == stamp  # not re-stamped


def test_convergence_trains_supervised_with_the_pretrained_critic(
    smoke_corpus, smoke_clap, tmp_path
):
    from wsas.lab.bench import convergence

    run = convergence(smoke_corpus, smoke_clap, tmp_path, 0.02, "smoke", points=2)
    seconds = [t for t, _ in run["curve"]]  # about every budget / points, and the last step
    assert run["steps"] >= 1 and len(seconds) >= 1 and seconds == sorted(seconds)
    assert run["train_seconds"] >= seconds[-1] > 0 and "test_si_sdr_db" in run
    # under bf16 autocast with another learning rate: recorded, and the run trained with it
    tuned = {"recon_loss": "snr", "bf16": True, "lr": 1e-3}
    run = convergence(smoke_corpus, smoke_clap, tmp_path / "bf16", 0.01, "smoke", 2, **tuned)
    assert run["overrides"] == tuned and run["steps"] >= 1
    trained = json.loads((tmp_path / "bf16" / "run" / "train.json").read_text())["config"]
    assert trained["lr"] == 1e-3 and trained["bf16"] and trained["minutes"] == 0.01


def test_bench_lr_and_batch_reach_the_convergence_runs_in_a_section_of_their_own(
    tmp_path, monkeypatch
):
    import wsas.lab.bench
    from wsas.cli import main

    asked = {}

    def runs(preset_name, minutes, root, bf16, seeds, tuned):  # instead of training
        asked.update(preset=preset_name, minutes=minutes, bf16=bf16, seeds=seeds, tuned=tuned)
        return {"5min_snr_s0": {"test_sdr_db": 1.0}}

    monkeypatch.setattr(wsas.lab.bench, "convergence_curves", runs)
    out = tmp_path / "b.json"
    args = ["--convergence", "5", "--bf16", "--lr", "0.004", "--batch-size", "8", "--grid-crop"]
    assert main(["bench", "--preset", "smoke", "--only", "", "--out", str(out), *args]) == 0
    # smoke's batch is 8 already: only the learning rate differs from the preset's
    assert asked == {
        "preset": "smoke",
        "minutes": [5.0],
        "bf16": True,
        "seeds": (0,),
        "tuned": {"lr": 0.004, "grid_crop": True},
    }
    written = json.loads(out.read_text())
    assert written["convergence_bf16_lr0.004_grid_crop"]["5min_snr_s0"]["test_sdr_db"] == 1.0
    assert "convergence_bf16" not in written


def test_convergence_runs_with_other_hyperparameters_get_a_section_of_their_own():
    from wsas.lab.bench import convergence_section

    assert convergence_section() == "convergence"
    assert convergence_section(True) == "convergence_bf16"
    tuned = {"lr": 0.004, "batch_size": 8}
    assert convergence_section(True, tuned) == "convergence_bf16_lr0.004_batch_size8"
    assert convergence_section(True, {"grid_crop": True}) == "convergence_bf16_grid_crop"


def test_a_convergence_run_keeps_the_earlier_runs_of_other_budgets_each_with_its_stamp():
    from wsas.lab.bench import merge_report

    old, older = {"git_commit": "abc1234"}, {"git_commit": "0123456"}
    earlier = {
        "preset": "tiny",
        "steps": {"x": 1},
        "convergence_bf16": {
            "5min_snr_s0": {"test_sdr_db": 8.0},
            "15min_snr_s0": {"v": 10},
            "15min_snr_s1": {"v": 11, "provenance": older},  # kept by an earlier merge
        },
        "convergence": {"5min_snr_s0": {"v": 7}},
        "section_provenance": {"steps": old, "convergence_bf16": old},
        "provenance": old,
    }
    report = {"preset": "tiny", "convergence_bf16": {"5min_snr_s0": {"test_sdr_db": 8.5}}}
    merged = merge_report(earlier, report, {"git_commit": "def5678"})
    now = {"git_commit": "def5678", "preset": "tiny"}  # a stamp names the preset measured
    runs = merged["convergence_bf16"]
    assert runs["5min_snr_s0"] == {"test_sdr_db": 8.5, "provenance": now}  # replaced
    assert runs["15min_snr_s0"] == {"v": 10, "provenance": old}  # kept, with its run's stamp
    assert runs["15min_snr_s1"] == {"v": 11, "provenance": older}  # its own stamp stays
    assert merged["steps"] == {"x": 1} and merged["section_provenance"]["steps"] == old
    assert merged["section_provenance"]["convergence_bf16"] == now
    # a section this run did not measure stays as it was, stamped by the last run
    assert merged["convergence"] == {"5min_snr_s0": {"v": 7}}
    assert merged["section_provenance"]["convergence"] == {
        **old,
        "measured_by_this_run_or_earlier": True,
    }
    # another preset's runs are not mixed in, and a later merge still knows whose they are
    small = merge_report(earlier, {**report, "preset": "small"}, {"git_commit": "def5678"})
    assert list(small["convergence_bf16"]) == ["5min_snr_s0"]
    again = merge_report(small, report, {"git_commit": "fedcba9"})["convergence_bf16"]
    assert list(again) == ["5min_snr_s0"]
