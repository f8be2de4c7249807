import json

from wsas.lab.gpu import main
from wsas.regimes import REGIMES


def test_the_gpu_checks_cpu_fallback_times_every_regime_and_trains(tmp_path):
    path = main(["--device", "cpu", "--out", str(tmp_path), "--minutes", "3"])
    assert path == tmp_path / "cpu.json"
    report = json.loads(path.read_text())
    assert report["sizes"] == "smoke" and report["conditioning"] == "cross"
    for mode in REGIMES:
        step = report["steps"][f"tiny/{mode}"]
        assert step["step_s"] > 0 and step["examples_per_s"] > 0
        assert step["peak_gib"] is None  # no GPU memory on CPU
    laion = report["steps"].get("laion/weak", report["steps"].get("laion"))
    assert laion is not None  # timed, or the reason it could not be built
    training = report["training"]
    assert training["steps"] >= 1 and training["minutes"] <= 0.05  # seconds, not minutes
    assert training["val_si_sdr"] is not None
