from wsas.bench import shared_encoder_speedup, table


def test_shared_encoder_benchmark_reports_both_paths():
    result = shared_encoder_speedup("smoke", "late", batch=2)
    assert result["batched_step_s"] > 0 and result["one_pass_per_query_step_s"] > 0
    assert result["queries_per_example"] == 6
    assert "speedup" in table({"preset": "smoke", "x": result})


def test_bss_eval_speed_reports_both_backends_and_their_agreement():
    from wsas.bench import bss_eval_speed

    report = bss_eval_speed(seconds=(0.25,), n_fast=2, n_mir=1)["0.25s"]
    assert report["fast_items_per_s"] > 0 and report["mir_eval_items_per_s"] > 0
    assert report["max_abs_diff_db"] < 0.01
    assert 3 < report["mean_sdr_db"] < 20  # leaky, noisy estimates like a trained separator's
