import json
from dataclasses import asdict, replace

import pytest
import torch

from wsas.errors import WsasError
from wsas.lab.grid import Cell, grid, relative_cost
from wsas.lab.report import (
    ablations,
    claims,
    findings,
    headroom,
    reading,
    si_sdr_tables,
    sweeps,
    tables,
)
from wsas.lab.reproduce import critic_of, reproduce
from wsas.presets import PRESETS


def test_grids_cover_the_papers_tables():
    tiny = {c.name for c in grid(PRESETS["tiny"])}
    c = PRESETS["tiny"].conditioning
    claim_cells = (
        "weak-x2",
        "weak-x2-{c}-sim0",
        "mix-and-separate-x2",
        "supervised-x2",
        "supervised-x2-clean5",
        "semi-x2-clean5",
    )
    assert PRESETS["tiny"].seeds == (0, 1, 2)
    assert {
        (f"{name}-s{s}" if "{c}" in name else f"{name}-{c}-s{s}").format(c=c)
        for name in claim_cells
        for s in (0, 1, 2)
    } | {f"pit-x2-{c}-s0", f"mixit-x2-{c}-s0"} | {
        f"weak-x2-{c}-{cheaper}-s{s}"
        for s in (0, 1, 2)
        for cheaper in ("clap1.024s", "leanclap", "leanaudioclap", "floorlevel", "energylevel")
    } | {
        f"weak-x2-{c}-sim2-s0",
        f"weak-x2-{c}-sim8-s0",
        f"mix-and-separate-x2-{c}-lr0.001-s0",
        f"mix-and-separate-x2-{c}-lr0.004-s0",
        f"semi-x2-clean5-{c}-ls4-s0",
        f"semi-x2-clean5-{c}-ls16-s0",
        f"supervised-x2-{c}-s0-1200steps",
        f"mix-and-separate-x2-{c}-s0-1200steps",
    } == tiny
    long = grid(PRESETS["tiny-long"])  # the claim cells trained to the plateau, no sweeps
    assert {c.name for c in long} == {
        n
        for n in tiny
        if "-lr" not in n
        and "-ls" not in n
        and "sim2" not in n
        and "sim8" not in n
        and "clap1.024s" not in n
        and "leanclap" not in n
        and "leanaudioclap" not in n
        and "floorlevel" not in n
        and "energylevel" not in n
        and not n.endswith("steps")
    } and PRESETS["tiny-long"].train_steps == 4 * PRESETS["tiny"].train_steps
    # the committed grids' critic is the full TinyCLAP; tiny's ablations train with the lean one
    # and with lean's audio tower learned into the full one's text space
    assert PRESETS["tiny"].critic == "full"
    assert PRESETS["tiny"].critic_ablation == ("lean", "leanaudio")
    for name in ("tiny-long", "tiny-var", "music", "small"):
        assert (PRESETS[name].critic, PRESETS[name].critic_ablation) == ("full", ())
    with pytest.raises(WsasError, match="preset tiny: critic 'huge' is not a TinyCLAP size"):
        grid(replace(PRESETS["tiny"], critic="huge"))
    small = grid(PRESETS["small"])
    assert {(c.mode, c.sources) for c in small} >= {
        (m, n) for m in ("mixit", "mix-and-separate", "weak") for n in (2, 3, 4)
    }
    assert {c.clean_fraction for c in small if c.mode == "semi"} == {0.05, 0.10, 0.25}
    assert {c.conditioning for c in small} == {"deep", "late"}
    assert len({c.name for c in small if c.seed == 0}) == 21 + 4 == len(small) - 2 * 9
    # three seeds for the cells the verdicts read only: headroom and claim (b) on the main
    # (late) conditioning, claim (a) at 3 and 4 sources on deep, semi at 5 %
    assert PRESETS["small"].seeds == (0, 1, 2)
    assert (
        {c.name[: -len("-s1")] for c in small if c.seed == 1}
        == {
            "supervised-x2-late",
            "supervised-x2-clean5-late",
            "mix-and-separate-x2-late",
            "weak-x2-late",
            "semi-x2-clean5-late",
            *(f"{m}-x{n}-deep" for m in ("mix-and-separate", "weak") for n in (3, 4)),
        }
        == {c.name[: -len("-s2")] for c in small if c.seed == 2}
    )
    with pytest.raises(WsasError, match="seeded_cells"):
        replace(PRESETS["small"], seeded_cells="claim")
    assert Cell("weak", sim_weight=0.0).name == "weak-x2-deep-sim0-s0"
    assert {c.name for c in small if c.steps} == {  # Tables 1-2's conditioning and claim (a)'s
        f"{m}-x4-{k}-s0-900steps" for m in ("mix-and-separate", "weak") for k in ("late", "deep")
    }
    assert Cell("semi", clean_fraction=0.1).name == "semi-x2-clean10-deep-s0"


def test_cells_are_ordered_by_their_whole_cost():
    """--jobs starts the longest cells first: a cell trained 4x longer counts 4x."""
    weak, sup = Cell("weak", conditioning="late"), Cell("supervised", conditioning="late")
    assert relative_cost(replace(sup, steps=1200), 300) == 4 * relative_cost(sup, 300)
    assert relative_cost(replace(weak, conditioning="deep"), 300) > relative_cost(weak, 300)
    assert relative_cost(weak, 300) > relative_cost(sup, 300)


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
    first = json.loads(next((out / "cells").glob("*.json")).read_text())
    old = {**first, "name": "weak-x9-deep-s0", "test_clip_seconds": 99.0}  # other test clips
    (out / "cells" / "weak-x9-deep-s0.json").write_text(json.dumps(old))
    other_critic = {**first, "name": "weak-x8-deep-s0", "critic_size": "lean"}  # smoke's is full
    (out / "cells" / "weak-x8-deep-s0.json").write_text(json.dumps(other_critic))
    # a report from before critic_size: its cell's critic, else the full one
    assert critic_of({"cell": {"critic": "lean"}}) == "lean" and critic_of({"cell": {}}) == "full"
    again = reproduce(
        "smoke",
        work=tmp_path / "work",
        results=tmp_path / "results",
        progress=False,
        resume=True,
        seeds=(0,),
    )
    # the cells scored on other test clips or trained by another critic are left out
    assert again["cells"] == summary["cells"]
    assert set(again["resumed_cells"]) == {c.name for c in grid(PRESETS["smoke"])}
    assert set(again["claims"]) >= {"a_weak_beats_mix_and_separate_by_2dB_at_3_4_sources"}
    assert "class_template" in again["bounds"] and "SI-SDR" in (out / "tables.md").read_text()
    # finished cells are read back, not retrained: no checkpoint was rewritten
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == checkpoints


def test_tiny_grid_can_add_higher_order_training_mixtures():
    c = PRESETS["tiny"].conditioning
    names = {cell.name for cell in grid(PRESETS["tiny"], (2, 3, 4))}
    assert {
        f"{m}-x{n}-{c}-s0" for m in ("weak", "mix-and-separate", "mixit") for n in (3, 4)
    } <= names
    assert (
        len(names) == len(grid(PRESETS["tiny"])) + 2 * 2 * 3 + 2
    )  # 2 sizes x (m&s, weak: 3 seeds; MixIT: 1)


def test_longer_training_cells_stay_out_of_the_main_tables():
    def report(mode, sources, sdr, steps=None, seed=0):
        cell = Cell(mode, sources, conditioning="late", seed=seed, steps=steps)
        return {"cell": asdict(cell), "sdr": sdr}

    cells = [
        report("supervised", 2, 6.0),
        report("weak", 4, 5.0),
        report("weak", 4, 9.0, seed=1),  # in Table 1, not beside the longer cell of seed 0
        report("weak", 4, 7.0, steps=900),
        report("mix-and-separate", 4, 4.0),
        report("mix-and-separate", 4, 4.5, steps=900),
    ]
    bounds = {
        "mixture": {"si_sdr": 0.0, "sdr": 0.1, "sir": 0.2, "sar": None},
        "oracle_irm": {"si_sdr": 14.0, "sdr": 15.0, "sir": 20.0, "sar": 17.0},
    }
    markdown, numbers = tables(cells, bounds, "late")
    assert (
        numbers["table1"]["weak"] == {"4": 7.0}
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
    assert said[4].endswith("6.00 dB, +1.00 dB over the same seeds at the preset's steps.")


def scored(
    mode,
    sources,
    items,
    conditioning="deep",
    clean=1.0,
    seed=0,
    sim_weight=None,
    lr=None,
    steps=None,
    lambda_s=None,
    clap_seconds=None,
    critic=None,
):
    """A cell report with per-test-mixture SI-SDR ``items``."""
    items = [float(v) for v in items]
    variant = dict(steps=steps, sim_weight=sim_weight, lr=lr, lambda_s=lambda_s, critic=critic)
    cell = Cell(mode, sources, clean, conditioning, seed, clap_seconds=clap_seconds, **variant)
    return {
        "cell": asdict(cell),
        "name": cell.name,
        "si_sdr": sum(items) / len(items),
        "sdr": 0.0,
        "sir": 0.0,
        "sar": 0.0,
        "items": {"si_sdr": items},
    }


def test_claims_get_verdicts_from_paired_intervals():
    import numpy as np

    rng = np.random.default_rng(0)
    base = rng.normal(5, 2, 60)  # 60 shared test mixtures: hard and easy ones
    cells = [
        scored("supervised", 2, base + 1),
        scored("weak", 2, base + 1 + rng.normal(0, 0.1, 60)),
        scored("weak", 3, base + 3 + rng.normal(0, 0.1, 60)),
        scored("mix-and-separate", 3, base),
        scored("weak", 4, base + 2 + rng.normal(0, 0.5, 60)),
        scored("mix-and-separate", 4, base),
        scored("semi", 2, base + 1 - 0.5, clean=0.05),
    ]
    bounds = {"oracle_irm": {"items": {"si_sdr": list(base + 15)}}}
    result = claims(cells, bounds, "deep")
    a = result["a_weak_beats_mix_and_separate_by_2dB_at_3_4_sources"]
    assert a["3_sources"]["verdict"] == "holds" and a["4_sources"]["verdict"] == "inconclusive"
    assert a["verdict"] == "inconclusive" and a["conditioning"] == "deep"
    b = result["b_weak_reaches_95pct_of_supervised"]  # weak = base + 1 vs 0.95 (base + 1)
    assert b["verdict"] == "holds" and b["difference_db"] > 0
    assert result["c_semi_5pct_beats_supervised_100pct"]["verdict"] == "fails"
    assert result["d_supervised_within_3dB_of_oracle_mask"]["verdict"] == "fails"
    assert "4.00 [" not in si_sdr_tables(cells, "deep")  # one seed: no interval
    room = headroom([*cells, scored("supervised", 2, base - 2, clean=0.05)], "deep")
    assert room["supervised_minus_supervised_5pct"]["verdict"] == "holds"
    assert room["supervised_minus_mix_and_separate"]["verdict"] == "not run"
    longer = [scored("supervised", 2, base + 3, steps=1200)]
    longer += [scored("mix-and-separate", 2, base + 0.5 + rng.normal(0, 0.1, 60), steps=1200)]
    room = headroom([*cells, *longer], "deep")  # the longer cells stay out of the main check
    assert room["supervised_minus_mix_and_separate"]["verdict"] == "not run"
    assert room["supervised_minus_mix_and_separate_1200_steps"]["verdict"] == "holds"
    longer = [
        scored("weak", 4, base + 1, steps=900),
        scored("mix-and-separate", 4, base, steps=900),
    ]
    a = claims([*cells, *longer], bounds, "deep")
    a = a["a_weak_beats_mix_and_separate_by_2dB_at_3_4_sources"]  # beside the verdict, not in it
    assert a["4_sources_900_steps"]["verdict"] == "fails" and a["verdict"] == "inconclusive"
    assert (
        a["4_sources"]
        == claims(cells, bounds, "deep")["a_weak_beats_mix_and_separate_by_2dB_at_3_4_sources"][
            "4_sources"
        ]
    )
    late = [  # on the main conditioning: the longer claim (a) still reads the deep cells
        scored("weak", 4, base + 9, conditioning="late", steps=900),
        scored("mix-and-separate", 4, base, conditioning="late", steps=900),
    ]
    on_late = claims([*cells, *longer, *late], bounds, "late")
    on_late = on_late["a_weak_beats_mix_and_separate_by_2dB_at_3_4_sources"]["4_sources_900_steps"]
    assert on_late["verdict"] == "fails"


def test_the_clap_term_ablation_is_its_own_row_and_decided_on_seeds():
    import numpy as np

    rng = np.random.default_rng(1)
    base = rng.normal(4, 2, 40)
    weak = [scored("weak", 2, base + 0.5 + rng.normal(0, 0.2, 40), seed=s) for s in range(3)]
    without = [scored("weak", 2, base, seed=s, sim_weight=0.0) for s in range(3)]
    decided = ablations(weak + without, "deep")["clap_term_weak_minus_weak_without_it"]
    assert decided["verdict"] == "holds" and 0.3 < decided["difference_db"] < 0.7
    assert ablations(weak, "deep")["clap_term_weak_minus_weak_without_it"]["verdict"] == "not run"
    table = si_sdr_tables(weak + without, "deep")  # the ablation stays out of Table 1's weak row
    weak_row = next(line for line in table.splitlines() if line.startswith("| bi-modal"))
    assert f"{np.mean([w['si_sdr'] for w in weak]):.2f} [" in weak_row
    assert "weak-x2-deep-sim0-s2" in table  # but is listed with every cell


@pytest.mark.parametrize(
    "variant, name, key",
    [
        (
            {"clap_seconds": 1.024},
            "weak-x2-deep-clap1.024s-s0",
            "clap_hears_1.024s_weak_minus_weak",
        ),
        ({"critic": "lean"}, "weak-x2-deep-leanclap-s0", "lean_critic_weak_minus_weak"),
    ],
)
def test_a_cheaper_critic_is_compared_with_the_main_weak(variant, name, key):
    import numpy as np

    rng = np.random.default_rng(2)
    base = rng.normal(4, 2, 40)
    weak = [scored("weak", 2, base + rng.normal(0, 0.2, 40), seed=s) for s in range(3)]
    cropped = [scored("weak", 2, base - 1, seed=s, **variant) for s in range(3)]
    assert cropped[0]["name"] == name
    found = ablations(weak + cropped, "deep")
    decided = found[key]
    assert decided["verdict"] == "fails" and -1.3 < decided["difference_db"] < -0.7
    # the cropped cells stay out of the main weak position the other decisions read
    without = [scored("weak", 2, base - 0.5, seed=s, sim_weight=0.0) for s in range(3)]
    term = "clap_term_weak_minus_weak_without_it"
    assert (
        ablations(weak + without + cropped, "deep")[term] == ablations(weak + without, "deep")[term]
    )
    assert key not in ablations(weak, "deep")


def test_claim_a_cells_get_an_si_sdr_table_by_conditioning():
    cells = [
        scored(m, n, [n + (m == "weak") + (c == "deep")] * 4, conditioning=c)
        for m in ("mix-and-separate", "weak")
        for n in (2, 3, 4)
        for c in ("deep", "late")
    ]
    table = si_sdr_tables(cells, "late").split("### Deep vs late conditioning: SI-SDR")[1]
    assert "| weak | deep | 4.00 | 5.00 | 6.00 |" in table
    assert "| mix-and-separate | late | 2.00 | 3.00 | 4.00 |" in table
    assert "Deep vs late" not in si_sdr_tables(cells[1::2], "late")  # one conditioning: none


def test_the_reading_is_computed_from_the_numbers():
    import numpy as np

    rng = np.random.default_rng(2)
    base = rng.normal(4, 2, 40)
    cells = [scored("supervised", 2, base + 1 + rng.normal(0, 0.3, 40), seed=s) for s in range(3)]
    cells += [scored("mix-and-separate", 2, base - 1, seed=s) for s in range(3)]
    for c, gain in zip(cells, (0.5, 0.7, 0.6, 0.0, 0.1, -0.1)):
        c["train"] = {"last_quarter_gain_db": gain}
    template = float(np.mean(base))
    room = headroom(cells, "deep")
    said = reading(cells, {"class_template": {"si_sdr": template}}, room)
    assert said[0].startswith("supervised minus mix and separate: +2.") and "holds" in said[0]
    assert "not run" not in " ".join(said)  # the 5 % cell is missing: no sentence about it
    assert f"({template:.2f} dB SI-SDR): supervised-x2-deep (" in said[1]
    assert "at or below it: mix-and-separate-x2-deep (" in said[1]
    assert "standard deviation" in said[2]
    assert said[3].count("(+") == 1 and "supervised-x2-deep (+0.60)" in said[3]


def test_sweeps_choose_on_validation_not_on_test():
    cells = [
        scored("weak", 2, [3.0, 3.0]),
        scored("weak", 2, [2.0, 2.0], seed=1),  # another seed of the main cell: not in the sweep
        scored("weak", 2, [1.0, 1.0], sim_weight=0.0),
        scored("weak", 2, [9.0, 9.0], sim_weight=8.0),
        scored("mix-and-separate", 2, [4.0, 4.0]),
    ]
    for c, val in zip(cells, (5.0, 5.5, 4.0, 4.5, 3.0)):
        c["train"] = {"best_val_si_sdr": val}
    rows = sweeps(cells, "deep", {"sim_weight": 0.5, "lr": 2e-3})
    assert [r["setting"] for r in rows] == [
        "sim_weight = 0.5 (main grid)",
        "sim_weight = 0",
        "sim_weight = 8",
    ]  # mix-and-separate swept nothing: no rows
    chosen = [r["setting"] for r in rows if r["chosen on validation"]]
    assert chosen == ["sim_weight = 0.5 (main grid)"]  # best validation, though not best test
    assert all(r["seed"] == 0 for r in rows)
    semi = [
        scored("semi", 2, [3.0], clean=c, lambda_s=w)
        for c, w in ((0.1, None), (0.05, None), (0.05, 4.0))
    ]
    for c, val in zip(semi, (9.0, 4.0, 5.0)):
        c["train"] = {"best_val_si_sdr": val}
    rows = sweeps(semi, "deep", {"lambda_s": 1.0})  # the main cell at the sweep's clean fraction
    assert [
        (r["setting"], r["best validation SI-SDR"], r["chosen on validation"]) for r in rows
    ] == [
        ("lambda_s = 1 (main grid)", 4.0, False),
        ("lambda_s = 4", 5.0, True),
    ]


def test_a_critic_ablation_pretrains_its_own_tinyclap_and_its_cells_train_with_it(
    smoke_corpus, smoke_clap, tmp_path, monkeypatch
):
    import shutil

    import wsas.train
    from wsas.checkpoint import read_config
    from wsas.clap import load_clap
    from wsas.lab.reproduce import _is_size, critic_checkpoint, prepare, run_cell

    with pytest.raises(WsasError, match="critic_ablation: full is not another TinyCLAP size"):
        grid(replace(PRESETS["smoke"], critic_ablation=("full",)))  # the grid's own critic
    preset = replace(PRESETS["smoke"], critic_ablation=("lean", "leanaudio"), clap_steps=15)
    work = tmp_path / "smoke"
    shutil.copytree(smoke_corpus, work / "data")  # the grid's corpus and critic exist already
    shutil.copy(smoke_clap, work / "tinyclap.safetensors")
    (tmp_path / "clap.json").write_text('{"size": "full", "provenance": {"git_commit": "old"}}')
    corpus, full = prepare(
        preset, tmp_path, tmp_path / "clap.json", progress=False, ablation_critics=True
    )
    lean = critic_checkpoint(full, "lean")
    assert lean.name == "tinyclap-lean.safetensors" and critic_checkpoint(full, None) == full
    report = json.loads((tmp_path / "clap.json").read_text())
    assert report["sizes"]["lean"]["size"] == "lean" and report["sizes"]["lean"]["clips"] > 0
    # the grid critic's scores keep the stamp of the run that pretrained it
    assert report["provenance"] == {"git_commit": "old"} and report["sizes"]["lean"]["provenance"]
    assert read_config(lean)["n_mels"] == 32 and read_config(full)["n_mels"] == 64
    # leanaudio learned into the grid critic's text space, beside it; lean and leanaudio, of one
    # architecture, are told apart
    leanaudio = critic_checkpoint(full, "leanaudio")
    assert report["sizes"]["leanaudio"]["text_from"] == "full"
    captions = ["a dog barks"]
    queries = [load_clap("tiny", c).embed_text(captions) for c in (leanaudio, full)]
    assert torch.equal(*queries)
    assert not _is_size(leanaudio, "lean") and not _is_size(lean, "leanaudio", full)
    # the grid critic pretrained again (here with other weights: the fixture's used another
    # batch): the lean one's scores stay in clap.json, leanaudio is re-made in the new text space
    full.unlink()
    prepare(preset, tmp_path, tmp_path / "clap.json", progress=False, ablation_critics=True)
    again = json.loads((tmp_path / "clap.json").read_text())
    assert again["sizes"]["lean"] == report["sizes"]["lean"]
    assert again["provenance"] != {"git_commit": "old"}
    assert not torch.equal(load_clap("tiny", full).embed_text(captions), queries[1])
    queries = [load_clap("tiny", c).embed_text(captions) for c in (leanaudio, full)]
    assert torch.equal(*queries)
    (cell, _) = [c for c in grid(preset) if c.critic]
    assert cell.name == "weak-x2-late-leanclap-s0"
    monkeypatch.setattr(wsas.train, "native_bf16", lambda device: True)
    run_cell(cell, preset, corpus, full, tmp_path / "runs", progress=False, steps=1)
    (run,) = (tmp_path / "runs").glob("weak-x2-late-leanclap-s0*/checkpoint.safetensors")
    # a grid's critic hears in float32, as the committed cells' did, even where bf16 is native
    assert read_config(run)["critic_bf16"] is False
    trained = read_config(run)["clap"]
    assert trained["checkpoint"] == str(lean) and trained["config"]["n_mels"] == 32
    # a grid whose critic is lean: a full grid critic left by an older grid is pretrained again
    lean_grid = replace(preset, critic="lean", critic_ablation=("full",))
    with pytest.raises(WsasError, match="critic_ablation: lean is not another TinyCLAP size"):
        grid(replace(lean_grid, critic_ablation=("lean",)))
    assert [c.name for c in grid(lean_grid) if c.critic] == ["weak-x2-late-fullclap-s0"]
    prepare(lean_grid, tmp_path, tmp_path / "clap.json", progress=False, ablation_critics=True)
    assert read_config(full)["n_mels"] == 32
    assert read_config(critic_checkpoint(full, "full"))["n_mels"] == 64
    report = json.loads((tmp_path / "clap.json").read_text())
    # no stale scores of the grid's own size
    assert report["size"] == "lean" and sorted(report["sizes"]) == ["full", "leanaudio"]


def test_a_grid_critic_learned_into_the_full_text_space_keeps_the_full_queries(
    smoke_corpus, tmp_path
):
    import shutil

    from wsas.checkpoint import read_config
    from wsas.clap import load_clap
    from wsas.clap.pretrain import pretrain
    from wsas.lab.reproduce import critic_checkpoint, prepare

    preset = replace(PRESETS["smoke"], critic="leanaudio", clap_steps=15)
    shutil.copytree(smoke_corpus, tmp_path / "smoke" / "data")
    _, grid_ckpt = prepare(preset, tmp_path, tmp_path / "clap.json", progress=False)
    donor = critic_checkpoint(grid_ckpt, "full")  # pretrained first, beside the grid critic
    assert read_config(grid_ckpt)["text_from"] == "full" and read_config(donor)["n_mels"] == 64
    captions = ["a dog barks", "a violin plays"]
    queries = [load_clap("tiny", c).embed_text(captions) for c in (grid_ckpt, donor)]
    assert torch.equal(*queries)
    report = json.loads((tmp_path / "clap.json").read_text())
    assert report["size"] == "leanaudio" and report["text_from"] == "full"
    assert list(report["sizes"]) == ["full"]
    stamp = grid_ckpt.stat().st_mtime_ns
    prepare(preset, tmp_path, tmp_path / "clap.json", progress=False)  # both there: kept
    assert grid_ckpt.stat().st_mtime_ns == stamp
    # another donor (pretrained with another seed): the critic learned into the old one's text
    # space is made again
    pretrain(tmp_path / "smoke" / "data", donor, steps=15, seed=1, progress=False)
    prepare(preset, tmp_path, tmp_path / "clap.json", progress=False)
    assert grid_ckpt.stat().st_mtime_ns != stamp
    assert torch.equal(*(load_clap("tiny", c).embed_text(captions) for c in (grid_ckpt, donor)))


def test_remake_shipped_trains_scores_the_float16_weights_and_publishes(
    smoke_corpus, smoke_clap, tmp_path
):
    import shutil

    from wsas.bundle import load_run
    from wsas.evaluate import evaluate_run
    from wsas.lab.shipping import remake_shipped
    from wsas.pretrained import cards, model_path

    preset = replace(PRESETS["smoke"], train_steps=4, test_mixtures=6)
    shutil.copytree(smoke_corpus, tmp_path / "smoke" / "data")  # corpus and critic exist already
    shutil.copy(smoke_clap, tmp_path / "smoke" / "tinyclap.safetensors")
    shipped = tmp_path / "shipped"
    made = remake_shipped(preset, tmp_path, ("supervised",), folder=shipped, progress=False)
    card = cards(shipped)["supervised"]
    assert made == {"supervised": card} and card["mode"] == "supervised"
    assert card["conditioning"] == "deep" and card["steps"] == 4 and card["test_pairs"] == 6
    assert "smoke embedded corpus" in card["trained_on"] and "clean sources" in card["trained_on"]
    path = model_path("supervised", shipped)
    assert load_run(path).config["train"]["seed"] == 0
    # the card scores the weights that ship (float16, loaded back as float32)
    score = evaluate_run(path, tmp_path / "smoke" / "data", 6)["si_sdr"]
    assert card["test_si_sdr_db"]["mean"] == pytest.approx(score, abs=0.006)
    with pytest.raises(WsasError, match="cannot ship pit; shipped regimes: supervised"):
        remake_shipped(preset, tmp_path, ("pit",), folder=shipped, progress=False)


def test_every_cell_table_has_every_sdr_and_a_dash_where_a_cell_predates_it():
    old = scored("weak", 2, [3.0, 5.0])
    new = {
        **scored("weak", 2, [4.0, 6.0], seed=1),
        **{"si_sdri": 7.25, "sdri": 6.5, "snr_sdr": 1.75, "snr_sdri": 2.5},
    }
    table = si_sdr_tables([old, new], "deep").split("### Every cell")[1]
    assert "| SI-SDR | SI-SDRi | SDR | SDRi | SIR | SAR | SNR-SDR | SNR-SDRi |" in table
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in table.splitlines()[5:]}
    assert rows[old["name"]][1:9] == ["4.00", "-", "0.00", "-", "0.00", "0.00", "-", "-"]
    expected = ["5.00", "7.25", "0.00", "6.50", "0.00", "0.00", "1.75", "2.50"]
    assert rows[new["name"]][1:9] == expected
