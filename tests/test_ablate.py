"""wsas.lab.ablate: one option's values side by side, paired on the same test mixtures."""

import json

import pytest


@pytest.mark.slow
def test_an_ablation_trains_every_value_and_pairs_them_with_the_first(
    smoke_corpus, smoke_clap, tmp_path
):
    from wsas.lab.ablate import ablate

    (tmp_path / "work" / "smoke").mkdir(parents=True)  # the session's corpus and TinyCLAP
    (tmp_path / "work" / "smoke" / "data").symlink_to(smoke_corpus)
    (tmp_path / "work" / "smoke" / "tinyclap.safetensors").symlink_to(smoke_clap)
    summary = ablate(
        "smoke", "conditioning", ["late", "deep"], ("supervised",), (0,),
        work=str(tmp_path / "work"), results=str(tmp_path / "results"), progress=False,
    )  # fmt: skip
    assert [(r["mode"], r["value"]) for r in summary["rows"]] == [
        ("supervised", "late"),
        ("supervised", "deep"),
    ]
    (difference,) = summary["paired_si_sdr_vs_first"]
    late, deep = summary["rows"]
    expected = deep["test_si_sdr"] - late["test_si_sdr"]
    assert difference["si_sdr_db"] == pytest.approx(expected, abs=1e-3)
    assert all(r["seconds_per_step"] > 0 for r in summary["rows"])
    written = tmp_path / "results" / "smoke" / "ablations" / "conditioning.json"
    assert json.loads(written.read_text())["rows"] == json.loads(json.dumps(summary["rows"]))
    cells = sorted(p.name for p in (tmp_path / "results" / "smoke" / "cells").iterdir())
    assert cells == ["supervised-x2-deep-s0.json", "supervised-x2-late-s0.json"]
