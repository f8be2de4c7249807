"""Testbed search pilot (issue 41): per setting, one seed of mix-and-separate on 2- and on
4-source training mixtures and supervised, the same step budget, late conditioning, the
Trainer's CPU default precision; each scored on the preset's fixed 2-source test mixtures;
the premise computed with wsas.lab.premise. Not part of the package or its tests.

Usage: pilot.py STEPS SETTING:MODE:SOURCES ... (cells in that order; settings whose supervised
cell is the same model share it). Corpus: wsas.reproduce.prepare's, under /work/pilot/<preset>/.
"""

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

from wsas.clap import load_clap
from wsas.data.datasets import load_embedded
from wsas.evaluate import evaluate_run
from wsas.lab.premise import premise, premise_line
from wsas.presets import get_preset
from wsas.results import write_json
from wsas.lab.stats import paired_difference
from wsas.train import Trainer

WORK = Path("/work/pilot")
OUT = Path(os.environ.get("PILOT_OUT", "/work/wt-testbed/results/testbed-search"))
CELLS = (("supervised", 2), ("mix-and-separate", 2), ("mix-and-separate", 4))


def cell(preset, corpus, clap, runs, mode, sources, steps):
    """Train one cell (or read its finished report) and score it on the test pairs."""
    run = runs / f"{mode}-x{sources}-late-s0-{steps}steps"
    if (run / "report.json").is_file():
        return json.loads((run / "report.json").read_text())
    config = preset.train_config(mode, "late", steps, sources=sources, seed=0)
    config = replace(config, val_every=max(1, steps // 8))
    trainer = Trainer(
        config, load_clap("tiny", clap), run, *(load_embedded(corpus, s) for s in ("train", "val"))
    )
    trainer.run(resume=True, progress=False)
    report = evaluate_run(run, corpus, preset.test_mixtures)
    curve = [
        (h["step"], round(h["val_si_sdr"], 3))
        for h in trainer.history
        if h["val_si_sdr"] is not None
    ]
    out = {
        "mode": mode,
        "sources": sources,
        "steps": steps,
        "seconds": round(trainer.seconds, 1),
        "si_sdr": report["si_sdr"],
        "sdr": report["sdr"],
        "items": report["items"]["si_sdr"],
        "val_curve": curve,
        **trainer.summary(),
    }
    (run / "report.json").write_text(json.dumps(out))
    return out


SETTINGS = {  # name -> (preset, Preset fields)
    "music": ("music", {}),
    "music+repeat": ("music", {"repeat_classes": True}),
}


def main():
    """run.py STEPS SETTING:MODE:SOURCES ...: the cells in that order; a setting's row is
    written as soon as its three cells are done."""
    steps, plan = int(sys.argv[1]), [a.split(":") for a in sys.argv[2:]]
    torch.set_num_threads(int(os.environ.get("PILOT_THREADS", 1)))
    done = {}
    for name, mode, sources in plan:
        preset_name, fields = SETTINGS[name]
        base = get_preset(preset_name)
        preset = replace(base, **fields)
        # the corpus built by wsas.reproduce.prepare; the TinyCLAP of the shipped supervised
        # model (tiny's corpus, every class): the queries' text tower, the same for every cell
        corpus, clap = WORK / base.name / "data", WORK / "tinyclap-shipped.safetensors"
        # supervised trains on clean single mixtures: repeat_classes does not touch it
        shared = mode == "supervised" and set(fields) <= {"repeat_classes"}
        runs = WORK / base.name / ("runs-shared" if shared else f"runs-{name}")
        report = cell(preset, corpus, clap, runs, mode, int(sources), steps)
        done.setdefault(name, {})[f"{mode}-x{sources}"] = report
        if shared:
            for other, (p, f) in SETTINGS.items():
                if p == preset_name and set(f) <= {"repeat_classes"}:
                    done.setdefault(other, {})[f"{mode}-x{sources}"] = report
        print(name, mode, sources, report["si_sdr"], report["seconds"], flush=True)
        for setting, cells in done.items():
            write_row(setting, SETTINGS[setting], steps, cells)


def write_row(name, setting, steps, done):
    """The setting's row of search.json / search.md: the premise once its three cells are
    done; until then the cells done so far."""
    preset_name, fields = setting
    keys = ("supervised-x2", "mix-and-separate-x2", "mix-and-separate-x4")
    sup, ms2, ms4 = (done[k]["items"] if k in done else None for k in keys)
    check = premise(ms2, ms4, sup) if ms2 and ms4 and sup else None
    if check is None and ms4 and sup:  # the gap alone, until mix-and-separate x2 is done
        mean, low, high = paired_difference(sup, ms4)
        check = {"gap": {"mean": mean, "low": low, "high": high}, "holds": None}
    row = {
        "setting": name,
        "preset": preset_name,
        "fields": fields,
        "steps": steps,
        "cells": {k: {kk: v[kk] for kk in v if kk != "items"} for k, v in done.items()},
        "premise": check,
        "line": premise_line(check) if check and "drop" in check else "cells missing",
        "wall_seconds": round(sum(v["seconds"] for v in done.values()), 1),
    }
    path = OUT / "search.json"
    table = json.loads(path.read_text()) if path.is_file() else {"settings": []}
    table["settings"] = [r for r in table["settings"] if r["setting"] != name] + [row]
    write_json(path, {"settings": table["settings"]})
    (OUT / "search.md").write_text(markdown(table["settings"]))
    print(name, row["line"], flush=True)


def markdown(rows):
    """The search's table, one row per setting (dB SI-SDR on the same 2-source test mixtures)."""

    def diff(d):
        return f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]" if d else "-"

    def plateau(c):  # validation SI-SDR gained over the last quarter of training
        return f"{c['si_sdr']:.2f} ({c['last_quarter_gain_db']:+.2f})" if c else "not run"

    lines = [
        "# Testbed search (issue 41): does mix-and-separate degrade with more sources?",
        "",
        "One seed per cell, late conditioning, float32 (the Trainer's default on this CPU, which",
        "lacks bf16 instructions), the same step budget per cell; test SI-SDR (dB) on the preset's",
        "fixed 2-source 0 dB test mixtures, best-validation model; in brackets the validation",
        "SI-SDR gained over the last quarter of training (the plateau check). Drop: MS x2 - MS x4;",
        "gap: supervised - MS x4; paired 95 % intervals (wsas.lab.premise). The premise holds",
        "with drop >= 1 and gap >= 2 dB, both intervals above zero. Wall: training seconds of the",
        "three cells on 2 shared CPU cores (nice 15, other jobs running: noisy). Queries: the",
        "text tower of the shipped supervised model's TinyCLAP (tiny's corpus, every class; the",
        "same for every cell), as pretraining the music one did not finish in 30 minutes on the",
        "shared cores. Lr: cosine decay to 5 % at the last step, so a flat last quarter is the",
        "schedule's doing as much as a plateau's.",
        "",
        "| setting | steps | MS x2 | MS x4 | supervised | drop | gap | premise | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c, p = r["cells"], r["premise"] or {}
        verdict = "cells missing" if p.get("holds") is None else "holds" if p["holds"] else "fails"
        lines.append(
            f"| {r['setting']} | {r['steps']} | {plateau(c.get('mix-and-separate-x2'))} | "
            f"{plateau(c.get('mix-and-separate-x4'))} | {plateau(c.get('supervised-x2'))} | "
            f"{diff(p.get('drop'))} | {diff(p.get('gap'))} | {verdict} | "
            f"{r['wall_seconds']:.0f} |"
        )
    lines += ["", "Settings:", ""] + [
        f"- `{r['setting']}`: preset `{r['preset']}`"
        + (f" with {r['fields']}" if r["fields"] else "")
        for r in rows
    ]
    lines += ["", "Validation SI-SDR (dB) by step, 48 fixed 2-source validation mixtures:", ""]
    for r in rows:
        for k, c in r["cells"].items():
            curve = ", ".join(f"{step}: {v:.2f}" for step, v in c["val_curve"])
            lines.append(f"- `{r['setting']}` {k}: {curve}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
