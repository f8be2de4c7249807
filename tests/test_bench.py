from wsas.bench import shared_encoder_speedup, table


def test_shared_encoder_benchmark_reports_both_paths():
    result = shared_encoder_speedup("smoke", "late", batch=2)
    assert result["batched_step_s"] > 0 and result["one_pass_per_query_step_s"] > 0
    assert result["queries_per_example"] == 6
    assert "speedup" in table({"preset": "smoke", "x": result})
