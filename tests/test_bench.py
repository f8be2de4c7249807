
from wsas.bench import shared_encoder_speedup, table


def test_shared_encoder_benchmark_reports_both_paths_and_their_ratio():
    result = shared_encoder_speedup("smoke", "late", batch=2)
    # the speed-up comes from the unrounded timings; the reported ones are rounded to 1 ms
    loop, batched = result["one_pass_per_query_step_s"], result["batched_step_s"]
    low, high = (loop - 5e-4) / (batched + 5e-4), (loop + 5e-4) / (batched - 5e-4)
    assert low - 0.005 <= result["speedup"] <= high + 0.005
    assert result["queries_per_example"] == 6 and result["conditioning"] == "late"
    line = table({"preset": "smoke", "x": result}).splitlines()[1]
    assert all(f"{k}={v}" in line for k, v in result.items())


def test_bss_eval_speed_reports_both_backends_and_their_agreement():
    from wsas.bench import bss_eval_speed

    report = bss_eval_speed(seconds=(0.25,), n_fast=2, n_mir=1)["0.25s"]
    assert report["max_abs_diff_db"] < 0.01
    assert 3 < report["mean_sdr_db"] < 20  # leaky, noisy estimates like a trained separator's
