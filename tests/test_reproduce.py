import json

from wsas.presets import PRESETS
from wsas.reproduce import Cell, grid, reproduce


def test_grids_cover_the_papers_tables():
    tiny = {c.name for c in grid(PRESETS["tiny"])}
    c = PRESETS["tiny"].conditioning
    assert {f"{name}-{c}-s0" for name in ("weak-x2", "mix-and-separate-x2", "pit-x2", "mixit-x2", "supervised-x2",
                                          "supervised-x2-clean5", "semi-x2-clean5")} == tiny
    small = grid(PRESETS["small"])
    assert {(c.mode, c.sources) for c in small} >= {(m, n) for m in ("mixit", "mix-and-separate", "weak")
                                                    for n in (2, 3, 4)}
    assert {c.clean_fraction for c in small if c.mode == "semi"} == {0.05, 0.10, 0.25}
    assert {c.conditioning for c in small} == {"deep", "late"}
    assert len(small) == 21 * len(PRESETS["small"].seeds) == len({c.name for c in small})
    assert Cell("semi", clean_fraction=0.1).name == "semi-x2-clean10-deep-s0"


def test_smoke_reproduction_end_to_end_and_resume(tmp_path):
    summary = reproduce("smoke", work=tmp_path / "work", results=tmp_path / "results", progress=False, jobs=2)
    out = tmp_path / "results" / "smoke"
    for name in ("summary.json", "tables.md", "sdr_vs_sources.png", "clap.json"):
        assert (out / name).is_file(), name
    assert len(list((out / "cells").glob("*.json"))) == len(grid(PRESETS["smoke"]))
    stamped = json.loads((out / "summary.json").read_text())["provenance"]
    assert stamped["machine"] and "date" in stamped
    assert summary["bounds"]["oracle_irm"]["sdr"] > summary["bounds"]["mixture"]["sdr"]
    assert "Table 1" in (out / "tables.md").read_text()
    checkpoints = {p: p.stat().st_mtime_ns for p in (tmp_path / "work").rglob("checkpoint.safetensors")}
    again = reproduce("smoke", work=tmp_path / "work", results=tmp_path / "results", progress=False)
    assert again["cells"] == summary["cells"]
    # finished cells are read back, not retrained: no checkpoint was rewritten
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == checkpoints


def test_tiny_grid_can_add_higher_order_training_mixtures():
    c = PRESETS["tiny"].conditioning
    names = {cell.name for cell in grid(PRESETS["tiny"], (2, 3, 4))}
    assert {f"{m}-x{n}-{c}-s0" for m in ("weak", "mix-and-separate", "mixit") for n in (3, 4)} <= names
    assert len(names) == len(grid(PRESETS["tiny"])) + 6
