import json
from dataclasses import asdict

import pytest

from wsas.presets import PRESETS
from wsas.report import findings, tables
from wsas.reproduce import Cell, grid, reproduce


def test_grids_cover_the_papers_tables():
    tiny = {c.name for c in grid(PRESETS["tiny"])}
    c = PRESETS["tiny"].conditioning
    assert {
        f"{name}-{c}-s0"
        for name in (
            "weak-x2",
            "mix-and-separate-x2",
            "pit-x2",
            "mixit-x2",
            "supervised-x2",
            "supervised-x2-clean5",
            "semi-x2-clean5",
        )
    } == tiny
    small = grid(PRESETS["small"])
    assert {(c.mode, c.sources) for c in small} >= {
        (m, n) for m in ("mixit", "mix-and-separate", "weak") for n in (2, 3, 4)
    }
    assert {c.clean_fraction for c in small if c.mode == "semi"} == {0.05, 0.10, 0.25}
    assert {c.conditioning for c in small} == {"deep", "late"}
    assert len(small) == (21 + 2) * len(PRESETS["small"].seeds) == len({c.name for c in small})
    assert {c.name for c in small if c.steps} == {
        f"{m}-x4-late-s{s}-900steps"
        for m in ("mix-and-separate", "weak")
        for s in PRESETS["small"].seeds
    }
    assert Cell("semi", clean_fraction=0.1).name == "semi-x2-clean10-deep-s0"


@pytest.mark.slow
def test_smoke_reproduction_end_to_end_and_resume(tmp_path):
    summary = reproduce(
        "smoke", work=tmp_path / "work", results=tmp_path / "results", progress=False, jobs=2
    )
    out = tmp_path / "results" / "smoke"
    for name in ("summary.json", "tables.md", "sdr_vs_sources.png", "clap.json"):
        assert (out / name).is_file(), name
    assert len(list((out / "cells").glob("*.json"))) == len(grid(PRESETS["smoke"]))
    stamped = json.loads((out / "summary.json").read_text())["provenance"]
    assert stamped["machine"] and "date" in stamped
    assert summary["bounds"]["oracle_irm"]["sdr"] > summary["bounds"]["mixture"]["sdr"]
    assert "Table 1" in (out / "tables.md").read_text()
    checkpoints = {
        p: p.stat().st_mtime_ns for p in (tmp_path / "work").rglob("checkpoint.safetensors")
    }
    again = reproduce("smoke", work=tmp_path / "work", results=tmp_path / "results", progress=False)
    assert again["cells"] == summary["cells"]
    # finished cells are read back, not retrained: no checkpoint was rewritten
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == checkpoints


def test_tiny_grid_can_add_higher_order_training_mixtures():
    c = PRESETS["tiny"].conditioning
    names = {cell.name for cell in grid(PRESETS["tiny"], (2, 3, 4))}
    assert {
        f"{m}-x{n}-{c}-s0" for m in ("weak", "mix-and-separate", "mixit") for n in (3, 4)
    } <= names
    assert len(names) == len(grid(PRESETS["tiny"])) + 6


def test_longer_training_cells_stay_out_of_the_main_tables():
    def report(mode, sources, sdr, steps=None):
        return {"cell": asdict(Cell(mode, sources, conditioning="late", steps=steps)), "sdr": sdr}

    cells = [
        report("supervised", 2, 6.0),
        report("weak", 4, 5.0),
        report("weak", 4, 7.0, steps=900),
        report("mix-and-separate", 4, 4.0),
        report("mix-and-separate", 4, 4.5, steps=900),
    ]
    bounds = {
        "mixture": {"sdr": 0.1, "sir": 0.2, "sar": None},
        "oracle_irm": {"sdr": 15.0, "sir": 20.0, "sar": 17.0},
    }
    markdown, numbers = tables(cells, bounds, "late")
    assert (
        numbers["table1"]["weak"] == {"4": 5.0}
        and numbers["table1"]["mix-and-separate"]["4"] == 4.0
    )
    assert numbers["longer_training"]["weak/4/late"] == {
        "steps": 900,
        "sdr": 7.0,
        "sdr_preset_steps": 5.0,
    }
    assert "| weak | 4 | late | 5.00 | 7.00 | 900 |" in markdown


def test_findings_put_our_gaps_next_to_the_papers():
    numbers = {
        "table1": {"weak": {"2": 6.0, "4": 5.0}, "mix-and-separate": {"2": 5.5, "4": 3.0}},
        "conditioning": {
            "weak/deep": {"4": 5.5},
            "weak/late": {"4": 5.0},
            "mix-and-separate/deep": {"4": 4.0},
        },
        "longer_training": {"weak/4/late": {"steps": 900, "sdr": 6.0, "sdr_preset_steps": 5.0}},
    }
    said = findings(numbers)
    assert said[0] == (
        "Weak minus mix-and-separate: +0.50 dB with 2-source training mixtures (paper +2.5), "
        "+2.00 dB with 4-source training mixtures (paper +2.4)."
    )
    assert "mix-and-separate -2.50 dB (paper -1.6), weak -1.00 dB (paper -1.7)" in said[1]
    assert said[2] == "With deep conditioning, weak minus mix-and-separate: +1.50 dB (4 sources)."
    assert said[3] == "Deep minus late conditioning, weak: +0.50 dB (4 sources)."
    assert said[4].endswith("6.00 dB, +1.00 dB over the preset's steps.")
